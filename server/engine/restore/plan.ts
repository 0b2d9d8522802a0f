import type { RestoreRequest } from '../../../schemas/backup.ts'
import type { RestoreMode } from '../../../schemas/restore.ts'
import type { Target } from '../../config.ts'
import { InvalidInputError, PgkeepError } from '../../errors.ts'
import { sideName, type Destination } from './database.ts'

/**
 * How a restore writes, decided before it starts so a refusal reaches the caller as an error:
 * - `new`: the database does not exist (create): filled under a scratch name, renamed into place on success.
 * - `replace`: it exists and `clean` was asked: filled under a scratch name, then swapped in by rename and the
 *   old one dropped; until the swap the existing database is untouched, and a failure only drops the scratch.
 * - `into`: it exists, is empty (or `merge` was asked): restored in place in one transaction, so a failure
 *   leaves it as it was.
 */
export interface RestorePlan {
  mode: RestoreMode
  database: string
  /** where a `new` or `replace` restore writes until it succeeded */
  scratch?: string
  /** the name the replaced database has between the swap and its drop */
  old?: string
  /** the existing database's oid (`replace`, `into`) */
  existingOid?: number
}

export function planRestore (restoreId: string, req: RestoreRequest, dest: Destination, target: Target): RestorePlan {
  const db = req.database
  const where = `database "${db}" on target "${target.name}"`
  if (req.merge && req.clean) throw new InvalidInputError('merge and clean exclude each other: clean replaces the database, merge adds to it', 'merge')
  if (!dest.exists) {
    if (!req.create) throw new PgkeepError('NOT_FOUND', `${where} does not exist; restore with create to make it`)
    return { mode: 'new', database: db, scratch: sideName(db, 'restore', restoreId) }
  }
  if (req.clean) {
    if (dest.sessions > 0) {
      throw new PgkeepError('CONFLICT', `${where} is in use by ${dest.sessions} other session${dest.sessions === 1 ? '' : 's'}; disconnect them before replacing it`)
    }
    return { mode: 'replace', database: db, scratch: sideName(db, 'restore', restoreId), old: sideName(db, 'old', restoreId), existingOid: dest.oid }
  }
  if (req.create) throw new PgkeepError('CONFLICT', `database "${db}" already exists on target "${target.name}"; restore with clean to replace it`)
  if (dest.objects.length > 0 && !req.merge) {
    const shown = dest.objects.slice(0, 3).join(', ')
    const more = dest.objects.length > 3 ? ` and ${dest.objects.length >= 100 ? 'many' : dest.objects.length - 3} more` : ''
    throw new PgkeepError('TARGET_NOT_EMPTY',
      `${where} is not empty (${shown}${more}); restore with clean to replace it, or merge to add the backup's objects to it`)
  }
  return { mode: 'into', database: db, existingOid: dest.oid }
}
