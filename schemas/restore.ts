import { Type, type Static } from 'typebox'
import { BackupId, IsoDateTime } from './common.ts'

export const RestoreStatus = Type.Union([
  Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled'),
])
export type RestoreStatus = Static<typeof RestoreStatus>

/**
 * How a restore writes (server/engine/restore/plan.ts): `new` and `replace` fill a scratch database that is
 * renamed into place only once the restore succeeded (`replace` then drops the database it replaced);
 * `into` restores in place, in one transaction, into an existing empty database (or one it was told to merge into).
 */
export const RestoreMode = Type.Union([Type.Literal('new'), Type.Literal('replace'), Type.Literal('into')])
export type RestoreMode = Static<typeof RestoreMode>

/** Restore ids are UUIDv7 like backup ids, but name a restore job, never a backup. */
export const RestoreId = Type.String({
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
  description: 'UUIDv7 of a restore job',
})
export const RestoreIdParams = Type.Object({ id: RestoreId }, { additionalProperties: false })

/** Bytes of the backup read so far out of its size on disk; percent reaches 100 only on success. */
export const RestoreProgress = Type.Object({
  bytes: Type.Integer({ minimum: 0 }),
  totalBytes: Type.Integer({ minimum: 0 }),
  percent: Type.Number({ minimum: 0, maximum: 100 }),
  /** bytes per second, smoothed */
  rate: Type.Number({ minimum: 0 }),
  currentItem: Type.Optional(Type.String()),
})
export type RestoreProgress = Static<typeof RestoreProgress>

/** One restore job as the server knows it: while it runs and for a while after it ends. */
export const RestoreState = Type.Object({
  restoreId: RestoreId,
  backupId: BackupId,
  database: Type.String(),
  mode: Type.Optional(RestoreMode),
  status: RestoreStatus,
  progress: Type.Optional(RestoreProgress),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  /** when this state was last changed */
  at: IsoDateTime,
})
export type RestoreState = Static<typeof RestoreState>

/** 202 to POST /api/backup/:id/restore: the restore job to follow at /api/restore/:id. */
export const RestoreReply = Type.Object({
  restore: Type.Object({ id: RestoreId, backupId: BackupId, database: Type.String(), mode: RestoreMode }),
})
export type RestoreReply = Static<typeof RestoreReply>
