import type { Backup } from '../../../schemas/backup.ts'
import { setStatus } from '../../../schemas/sets.ts'
import { groupSets } from './set-view.ts'

/** NUL never occurs in a PostgreSQL name: a set's series cannot be mistaken for a database's. */
const SET_SERIES_DATABASE = '\0set'

/**
 * What retention plans over: single backups as they are, and each set as one record standing for all its members
 * (id and name the set's; completed only when every member is; pinned when any member is, the safe side). Sets
 * of one target form their own series, apart from its single-database backups. `members` maps a set's id back
 * to the backups a decision about it applies to.
 */
export function retentionUnits (backups: Backup[]): { units: Backup[], members: Map<string, Backup[]> } {
  const sets = groupSets(backups)
  const units: Backup[] = backups.filter(b => b.set === undefined)
  for (const [setId, members] of sets) {
    const first = members.find(m => m.kind !== 'globals') ?? members[0]
    units.push({ ...first, id: setId, name: first.set!.name, database: SET_SERIES_DATABASE, status: setStatus(members), pinned: members.some(m => m.pinned) })
  }
  return { units, members: sets }
}
