import { Type, type Static } from 'typebox'
import { Backup, BackupStatus, Progress } from './backup.ts'
import { BackupId } from './common.ts'
import { RestoreState } from './restore.ts'
import { Drill } from './drill.ts'

/** The WebSocket protocol, declared once: one JSON object per message. */
export const SnapshotEvent = Type.Object({
  type: Type.Literal('snapshot'),
  jobs: Type.Array(Type.Object({ backup: Backup, progress: Type.Optional(Progress) })),
  /** restores still running when the viewer connected */
  restores: Type.Optional(Type.Array(RestoreState)),
  /** drills still running when the viewer connected */
  drills: Type.Optional(Type.Array(Drill)),
})
export const StatusEvent = Type.Object({
  type: Type.Literal('status'),
  backupId: BackupId,
  status: BackupStatus,
  backup: Backup,
})
/** Flat: {type, backupId, bytes, rate, percent?, etaSeconds?, currentTable?, tablesDone, tablesTotal}. */
export const ProgressEvent = Type.Object({
  ...Progress.properties,
  type: Type.Literal('progress'),
})
export const LogEvent = Type.Object({
  type: Type.Literal('log'),
  backupId: BackupId,
  line: Type.String(),
  at: Type.String(),
})
/** Something a running job's admin should know before it ends, e.g. XMIN_HELD: the dump's snapshot holds vacuum back. */
export const WarningEvent = Type.Object({
  type: Type.Literal('warning'),
  backupId: BackupId,
  code: Type.String(),
  message: Type.String(),
  at: Type.String(),
})
export type WarningEvent = Static<typeof WarningEvent>
export const CreatedEvent = Type.Object({ type: Type.Literal('created'), backupId: BackupId, backup: Backup })
export const DeletedEvent = Type.Object({ type: Type.Literal('deleted'), backupId: BackupId })
/** Flat like progress: a RestoreState with its type; sent on start, on progress (throttled) and on its end. */
export const RestoreEvent = Type.Object({
  ...RestoreState.properties,
  type: Type.Literal('restore'),
})

/** Flat: a Drill with its type; sent on start, on progress and each check (throttled), and on its end. */
export const DrillEvent = Type.Object({
  ...Drill.properties,
  type: Type.Literal('drill'),
})

export const ServerEvent = Type.Union([SnapshotEvent, StatusEvent, ProgressEvent, LogEvent, WarningEvent, CreatedEvent, DeletedEvent, RestoreEvent, DrillEvent])
export type ServerEvent = Static<typeof ServerEvent>
export type SnapshotEvent = Static<typeof SnapshotEvent>
export type StatusEvent = Static<typeof StatusEvent>
export type ProgressEvent = Static<typeof ProgressEvent>
export type LogEvent = Static<typeof LogEvent>
export type RestoreEvent = Static<typeof RestoreEvent>
export type DrillEvent = Static<typeof DrillEvent>
export type CreatedEvent = Static<typeof CreatedEvent>
export type DeletedEvent = Static<typeof DeletedEvent>
