import type { Backup } from '../../../schemas/backup.ts'
import { InvalidInputError, NotFoundError } from '../../errors.ts'

/** How few characters of an ID may stand for it: 8 hex digits are the first 32 bits of the UUIDv7 timestamp. */
export const MIN_ID_PREFIX = 8
const SHOWN_CANDIDATES = 10
const FULL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * The backup a user means by `ref`, in the forms the CLI (and `GET /api/backup/resolve/:ref`) accept:
 * - a full ID;
 * - `latest` (the newest completed backup of any target) or `latest:TARGET`: completed only, since a script says
 *   latest to restore or download it, and a running or failed one cannot be;
 * - a backup's name (names are unique);
 * - a unique prefix of an ID, at least 8 characters; an ambiguous one is INVALID_INPUT naming the candidates.
 * A name wins over a prefix when both match: it is the more specific of the two.
 */
export function resolveBackupRef (ref: string, backups: readonly Backup[]): Backup {
  const byId = backups.find(b => b.id === ref)
  if (byId) return byId
  const latest = /^latest(?::(.+))?$/.exec(ref)
  if (latest) {
    const target = latest[1]
    let newest: Backup | undefined
    for (const b of backups) {
      if (b.status !== 'completed' || (target !== undefined && b.target !== target)) continue
      // the id is time-ordered: it breaks ties between equal createdAt the same way every time
      if (!newest || b.createdAt > newest.createdAt || (b.createdAt === newest.createdAt && b.id > newest.id)) newest = b
    }
    if (!newest) throw new NotFoundError(target === undefined ? 'a completed backup' : `a completed backup of target "${target}"`)
    return newest
  }
  const byName = backups.find(b => b.name === ref)
  if (byName) return byName
  if (FULL_ID.test(ref)) throw new NotFoundError(`backup ${ref}`)
  if (!/^[0-9a-f-]+$/.test(ref)) throw new NotFoundError(`backup "${ref}" (neither an ID, an ID prefix, a name nor latest[:TARGET])`)
  if (ref.length < MIN_ID_PREFIX) throw new InvalidInputError(`an ID prefix needs at least ${MIN_ID_PREFIX} characters, got "${ref}"`, 'ref')
  const matches = backups.filter(b => b.id.startsWith(ref))
  if (matches.length === 0) throw new NotFoundError(`backup with ID prefix "${ref}"`)
  if (matches.length > 1) {
    matches.sort((a, b) => (a.id < b.id ? -1 : 1))
    const shown = matches.slice(0, SHOWN_CANDIDATES).map(b => `${b.id} ${b.name}`).join('; ')
    const more = matches.length > SHOWN_CANDIDATES ? `; and ${matches.length - SHOWN_CANDIDATES} more` : ''
    throw new InvalidInputError(`ID prefix "${ref}" matches ${matches.length} backups: ${shown}${more}; give more characters`, 'ref')
  }
  return matches[0]
}
