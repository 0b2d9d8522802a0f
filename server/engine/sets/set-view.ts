import type { Backup, Progress } from '../../../schemas/backup.ts'
import { setProgress, setStatus, type BackupSet } from '../../../schemas/sets.ts'
import { generateBackupName } from '../naming.ts'

/** `<target>-set-<UTC time>-<short id>`: a set's name says what it is like a backup's does, without an extension. */
export function generateSetName (target: string, at: Date, setId: string): string {
  return generateBackupName(target, 'set', at, setId, 'set').replace(/\.set$/, '')
}

/** Members in the order they run: the globals first, then the databases as planned (their ids are time-ordered). */
function memberOrder (a: Backup, b: Backup): number {
  if ((a.kind === 'globals') !== (b.kind === 'globals')) return a.kind === 'globals' ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** The members of every set, by set id, from the catalog's records (each member names its set). */
export function groupSets (backups: Iterable<Backup>): Map<string, Backup[]> {
  const sets = new Map<string, Backup[]>()
  for (const b of backups) {
    if (b.set === undefined) continue
    const members = sets.get(b.set.id)
    if (members === undefined) sets.set(b.set.id, [b])
    else members.push(b)
  }
  for (const members of sets.values()) members.sort(memberOrder)
  return sets
}

/** One set as readers see it: status and progress from its members, sizes summed, the first failure named. */
export function viewSet (members: Backup[], progressOf: (id: string) => Progress | undefined): BackupSet {
  const first = members[0]
  const set = first.set!
  const status = setStatus(members)
  const ended = members.every(m => m.finishedAt !== undefined)
  const finishedAt = ended ? members.map(m => m.finishedAt as string).sort().at(-1) : undefined
  const failed = members.find(m => m.status === 'failed' && m.error !== undefined)
  return {
    id: set.id,
    name: set.name,
    target: first.target,
    status,
    createdAt: first.createdAt,
    createdBy: first.createdBy,
    ...(finishedAt !== undefined ? { finishedAt } : {}),
    sizeBytes: members.reduce((n, m) => n + (m.sizeBytes ?? 0), 0),
    pinned: members.every(m => m.pinned),
    databases: members.filter(m => m.kind !== 'globals').map(m => m.database),
    ...(failed !== undefined ? { error: { code: failed.error!.code, message: `${failed.kind === 'globals' ? 'globals' : `database ${failed.database}`}: ${failed.error!.message}` } } : {}),
    members,
    ...(status === 'running' || status === 'queued' ? { progress: setProgress(set.id, members, progressOf) } : {}),
  }
}
