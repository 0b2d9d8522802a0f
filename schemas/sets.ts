import { Type, type Static } from 'typebox'
import { Backup, BackupStatus, ErrorInfo, Progress, TARGET_NAME_PATTERN } from './backup.ts'
import { BackupId, IsoDateTime } from './common.ts'
import { RestoreId, RestoreStatus } from './restore.ts'

/**
 * A backup set: one run over several databases of a server plus its globals. Its members are ordinary backups
 * (each with its own file, checksum and manifest) that carry `set: {id, name, weightBytes}`; the set itself is
 * derived from them, so a catalog rebuilt from the manifests rebuilds the sets too.
 */
export const SetProgress = Type.Object({
  setId: BackupId,
  /** of the total bytes of all member databases (their sizes when the set was planned) */
  percent: Type.Number({ minimum: 0, maximum: 100 }),
  totalBytes: Type.Integer({ minimum: 0 }),
  membersDone: Type.Integer({ minimum: 0 }),
  membersTotal: Type.Integer({ minimum: 0 }),
  /** the database being dumped now */
  currentDatabase: Type.Optional(Type.String()),
})
export type SetProgress = Static<typeof SetProgress>

export const BackupSet = Type.Object({
  id: BackupId,
  name: Type.String(),
  target: Type.String(),
  /** completed only when every member completed; failed when one failed (the others are kept); cancelled; else running or queued */
  status: BackupStatus,
  createdAt: IsoDateTime,
  createdBy: Type.String(),
  finishedAt: Type.Optional(IsoDateTime),
  /** sum of the members' stored bytes */
  sizeBytes: Type.Integer({ minimum: 0 }),
  /** every member pinned: retention never deletes the set */
  pinned: Type.Boolean(),
  /** the databases, in the order they are dumped (the globals member is not one) */
  databases: Type.Array(Type.String()),
  /** the first member failure, named */
  error: Type.Optional(ErrorInfo),
  /** the globals member first, then one per database */
  members: Type.Array(Backup),
  progress: Type.Optional(SetProgress),
})
export type BackupSet = Static<typeof BackupSet>

export const SetReply = Type.Object({ set: BackupSet })
export type SetReply = Static<typeof SetReply>

export const SetListQuery = Type.Object({
  target: Type.Optional(Type.String({ maxLength: 63 })),
  status: Type.Optional(BackupStatus),
}, { additionalProperties: false })
export type SetListQuery = Static<typeof SetListQuery>

export const SetListResult = Type.Object({ items: Type.Array(BackupSet), total: Type.Integer() })
export type SetListResult = Static<typeof SetListResult>

/** 202 to a create that made a set: `backup` is its first member (so older clients still get a backup), `set` the whole. */
export const CreateReply = Type.Object({ backup: Backup, set: Type.Optional(BackupSet) })
export type CreateReply = Static<typeof CreateReply>

export const SetRestoreRequest = Type.Object({
  /** the server to rebuild (a configured target); default: the set's own */
  target: Type.Optional(Type.String({ pattern: TARGET_NAME_PATTERN })),
  /** skip the globals member (roles, tablespaces): restore the databases only */
  skipGlobals: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })
export type SetRestoreRequest = Static<typeof SetRestoreRequest>

export const SetRestoreMember = Type.Object({
  backupId: BackupId,
  database: Type.String(),
  status: Type.Union([Type.Literal('pending'), RestoreStatus, Type.Literal('skipped')]),
  error: Type.Optional(ErrorInfo),
})

/** A set restore: globals first (existing roles and tablespaces left alone and listed), then each database with --create. */
export const SetRestoreState = Type.Object({
  restoreId: RestoreId,
  setId: BackupId,
  target: Type.String(),
  status: RestoreStatus,
  /** what the globals step did not apply because it already exists on the server, e.g. `role "app" already exists` */
  globalsSkipped: Type.Array(Type.String()),
  members: Type.Array(SetRestoreMember),
  error: Type.Optional(ErrorInfo),
  at: IsoDateTime,
})
export type SetRestoreState = Static<typeof SetRestoreState>

export const SetRestoreReply = Type.Object({ restore: SetRestoreState })
export type SetRestoreReply = Static<typeof SetRestoreReply>

const TERMINAL: readonly string[] = ['completed', 'failed', 'cancelled']

/**
 * The set's status from its members': completed only when all completed; once every member ended, failed when
 * one failed (the others are kept), else cancelled; before that running, or queued while none has started.
 */
export function setStatus (members: ReadonlyArray<Pick<Backup, 'status'>>): BackupStatus {
  if (members.length === 0) return 'failed'
  if (members.every(m => m.status === 'completed')) return 'completed'
  const allEnded = members.every(m => TERMINAL.includes(m.status))
  if (allEnded) return members.some(m => m.status === 'failed') ? 'failed' : 'cancelled'
  if (members.every(m => m.status === 'queued')) return 'queued'
  return 'running'
}

/**
 * Percent of the total bytes of all member databases: a member that ended counts whole, the running one by its
 * own percent. Never above 100; it cannot go backwards as long as each member's percent does not.
 */
export function setProgress (setId: string, members: ReadonlyArray<Backup>, progressOf: (id: string) => Pick<Progress, 'percent'> | undefined): SetProgress {
  let total = 0
  let done = 0
  let membersDone = 0
  let currentDatabase: string | undefined
  for (const m of members) {
    const w = m.set?.weightBytes ?? 0
    total += w
    if (TERMINAL.includes(m.status)) {
      done += w
      membersDone++
    } else if (m.status !== 'queued') {
      done += w * Math.min(100, progressOf(m.id)?.percent ?? 0) / 100
      if (m.kind !== 'globals') currentDatabase ??= m.database
    }
  }
  const percent = total === 0 ? (membersDone === members.length ? 100 : 0) : Math.min(100, 100 * done / total)
  return { setId, percent, totalBytes: total, membersDone, membersTotal: members.length, ...(currentDatabase !== undefined ? { currentDatabase } : {}) }
}
