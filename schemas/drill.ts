import { Type, type Static } from 'typebox'
import { BackupId, IsoDateTime } from './common.ts'
import { RestoreProgress } from './restore.ts'

/** Drill ids are UUIDv7 like backup ids, but name a drill, never a backup. */
export const DrillId = Type.String({
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
  description: 'UUIDv7 of a restore drill',
})
export const DrillIdParams = Type.Object({ id: DrillId }, { additionalProperties: false })

/**
 * running -> passed | failed | cancelled. `failed` covers both a check that did not hold and a drill that could
 * not finish (then `error` says why); `passed` only when every check held.
 */
export const DrillStatus = Type.Union([
  Type.Literal('running'), Type.Literal('passed'), Type.Literal('failed'), Type.Literal('cancelled'),
])
export type DrillStatus = Static<typeof DrillStatus>

/** The kinds of check, in the order a drill runs them. */
export const DrillCheckKind = Type.Union([
  Type.Literal('restore'), Type.Literal('objects'), Type.Literal('rowCounts'), Type.Literal('assertion'),
])
export type DrillCheckKind = Static<typeof DrillCheckKind>

export const RowCountMismatch = Type.Object({
  table: Type.String(),
  expected: Type.Number(),
  actual: Type.Number(),
})
export type RowCountMismatch = Static<typeof RowCountMismatch>

/** One check and its outcome. Lists are clipped (a few hundred entries) so a record stays small. */
export const DrillCheck = Type.Object({
  kind: DrillCheckKind,
  /** `restore`, `objects`, `rowCounts`, or the assertion's own name */
  name: Type.String(),
  ok: Type.Boolean(),
  /** the check could not be made (no estimate known, the restore failed first); says nothing against the backup */
  skipped: Type.Optional(Type.Boolean()),
  message: Type.String(),
  /** restore: every error line the restore tool printed */
  errors: Type.Optional(Type.Array(Type.String())),
  /** objects: how many TOC entries were looked for, and those not found in the restored catalog */
  checked: Type.Optional(Type.Integer()),
  missing: Type.Optional(Type.Array(Type.String())),
  /** rowCounts: exact (counted in the dump's snapshot) or an estimate (the source's reltuples, within a tolerance) */
  estimate: Type.Optional(Type.Boolean()),
  mismatches: Type.Optional(Type.Array(RowCountMismatch)),
  /** assertion: what the query returned and what was expected, as text */
  actual: Type.Optional(Type.String()),
  expected: Type.Optional(Type.String()),
  durationMs: Type.Optional(Type.Integer()),
})
export type DrillCheck = Static<typeof DrillCheck>

/** Where a drill is (running): restoring (with the restore's progress) or checking. */
export const DrillProgress = Type.Object({
  phase: Type.Union([Type.Literal('starting'), Type.Literal('restoring'), Type.Literal('checking'), Type.Literal('dropping')]),
  restore: Type.Optional(RestoreProgress),
  /** the check being run */
  check: Type.Optional(Type.String()),
})
export type DrillProgress = Static<typeof DrillProgress>

/** One drill: a restore of a backup into a scratch database that is always dropped, and its checks. */
export const Drill = Type.Object({
  id: DrillId,
  backupId: BackupId,
  backupName: Type.String(),
  target: Type.String(),
  /** the scratch database, `pgkeep_drill_<short id>`: gone once the drill ended */
  database: Type.String(),
  /** the drill server: host:port (no user, no password); the target's own unless drill.url says otherwise */
  server: Type.String(),
  status: DrillStatus,
  checks: Type.Array(DrillCheck),
  progress: Type.Optional(DrillProgress),
  /** the restore alone, start to end: a measured RTO for this backup */
  restoreMs: Type.Optional(Type.Integer()),
  /** the whole drill, checks and drop included */
  durationMs: Type.Optional(Type.Integer()),
  /** the backup's stored bytes that were read */
  bytes: Type.Optional(Type.Integer()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  createdBy: Type.String(),
  /** set when a `drills` schedule started it */
  scheduled: Type.Optional(Type.Boolean()),
  startedAt: IsoDateTime,
  finishedAt: Type.Optional(IsoDateTime),
})
export type Drill = Static<typeof Drill>

/** What a backup keeps of its last drill (registry and manifest): "restore proven <at>" when ok. */
export const DrillSummary = Type.Object({
  id: DrillId,
  at: IsoDateTime,
  ok: Type.Boolean(),
  restoreMs: Type.Optional(Type.Integer()),
  server: Type.String(),
  message: Type.Optional(Type.String()),
})
export type DrillSummary = Static<typeof DrillSummary>

/** POST /api/drills: a backup by id, or the newest completed backup of a target (the default target when neither). */
export const DrillRequest = Type.Object({
  backupId: Type.Optional(BackupId),
  target: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$' })),
}, { additionalProperties: false })
export type DrillRequest = Static<typeof DrillRequest>

export const DrillReply = Type.Object({ drill: Drill })
export type DrillReply = Static<typeof DrillReply>

export const DrillListQuery = Type.Object({
  backupId: Type.Optional(BackupId),
  target: Type.Optional(Type.String({ maxLength: 63 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
}, { additionalProperties: false })
export type DrillListQuery = Static<typeof DrillListQuery>

/** Newest first. */
export const DrillList = Type.Object({ items: Type.Array(Drill) })
export type DrillList = Static<typeof DrillList>

/** An admin's own check, run in the restored database: the first column of the first row must equal `expect`. */
export const DrillAssertion = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$' }),
  sql: Type.String({ minLength: 1, maxLength: 10000 }),
  /** compared as text with the value returned (true, 42, 'x'); default true */
  expect: Type.Optional(Type.Union([Type.Boolean(), Type.Number(), Type.String(), Type.Null()])),
}, { additionalProperties: false })
export type DrillAssertion = Static<typeof DrillAssertion>

/** `drill` in the config file, globally or per target (the target's fields win). */
export const DrillConfig = Type.Object({
  /** the server drills restore onto: postgres://user@host:port/db (default: the target's own server) */
  url: Type.Optional(Type.String({ minLength: 1 })),
  passwordFile: Type.Optional(Type.String({ minLength: 1 })),
  assertions: Type.Optional(Type.Array(DrillAssertion, { maxItems: 100 })),
  /** each assertion's statement_timeout (default 60) */
  statementTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
  /** row counts compared with reltuples estimates may differ by this fraction (default 0.1) */
  estimateTolerance: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
}, { additionalProperties: false })
export type DrillConfig = Static<typeof DrillConfig>

/** `drills` in the config file: scheduled drills of a target's newest completed backup. */
export const DrillSchedule = Type.Object({
  target: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$' }),
  cron: Type.String({ minLength: 1 }),
  timezone: Type.Optional(Type.String()),
}, { additionalProperties: false })
export type DrillSchedule = Static<typeof DrillSchedule>
