import { Type, type Static } from 'typebox'
import { BackupId, IsoDateTime } from './common.ts'
import { ANY_LEVEL, BackupFormat, Compression, JOBS_RANGE } from './format.ts'
import { DrillSummary } from './drill.ts'

export { BackupFormat, Compression } from './format.ts'

export const BACKUP_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'
export const TARGET_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$'
/** PostgreSQL identifiers/patterns as pg_dump -n/-T take them; no control characters, bounded. */
const PgPattern = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$' })

export const BackupStatus = Type.Union([
  Type.Literal('queued'), Type.Literal('running'), Type.Literal('verifying'),
  Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled'),
])
export type BackupStatus = Static<typeof BackupStatus>
export const TERMINAL_STATUSES: readonly BackupStatus[] = ['completed', 'failed', 'cancelled']

/** What a caller may ask for when creating a backup (API body, CLI flags, schedules). */
export const VerifyMode = Type.Union([Type.Literal('off'), Type.Literal('after'), Type.Literal('inline')])
export type VerifyMode = Static<typeof VerifyMode>

export const CreateBackupRequest = Type.Object({
  target: Type.Optional(Type.String({ pattern: TARGET_NAME_PATTERN })),
  name: Type.Optional(Type.String({ pattern: BACKUP_NAME_PATTERN })),
  format: Type.Optional(BackupFormat),
  compression: Type.Optional(Compression),
  /** Its range depends on the compression, and none takes no level: see create-rules.ts. */
  level: Type.Optional(Type.Integer({ minimum: ANY_LEVEL.min, maximum: ANY_LEVEL.max })),
  schemaOnly: Type.Optional(Type.Boolean()),
  dataOnly: Type.Optional(Type.Boolean()),
  schemas: Type.Optional(Type.Array(PgPattern, { maxItems: 100 })),
  excludeTables: Type.Optional(Type.Array(PgPattern, { maxItems: 1000 })),
  /** Parallel dump workers; directory format only. */
  jobs: Type.Optional(Type.Integer({ minimum: JOBS_RANGE.min, maximum: JOBS_RANGE.max })),
  /** pg_dump --no-owner / --no-privileges: for restoring into a cluster with other roles */
  noOwner: Type.Optional(Type.Boolean()),
  noPrivileges: Type.Optional(Type.Boolean()),
  /**
   * `after`: the full validation runs as the job's last step, before it completes. `inline`: the structural check
   * runs on pg_dump's stream while it is written, and a failure fails the backup (docs/verification.md).
   */
  verify: Type.Optional(VerifyMode),
  /** count every table's rows in the dump's own snapshot, so a restore drill can compare exactly (docs/drills.md) */
  countRows: Type.Optional(Type.Boolean()),
  /** a backup set of every database of the target's server (templates out; see docs/sets.md) plus its globals */
  allDatabases: Type.Optional(Type.Boolean()),
  /** a backup set of these databases of the target's server plus its globals */
  databases: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 63, pattern: '^[^\\u0000-\\u001f]+$' }), { minItems: 1, maxItems: 1000 })),
  /** add the server's globals (roles, memberships, tablespaces: pg_dumpall --globals-only) as a set member */
  globals: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })
export type CreateBackupRequest = Static<typeof CreateBackupRequest>

export const BackupOptions = Type.Object({
  schemaOnly: Type.Boolean(),
  dataOnly: Type.Boolean(),
  schemas: Type.Array(Type.String()),
  excludeTables: Type.Array(Type.String()),
  jobs: Type.Integer(),
  noOwner: Type.Boolean(),
  noPrivileges: Type.Boolean(),
  /** absent on records from before it existed: off */
  verify: Type.Optional(VerifyMode),
  /** absent: off */
  countRows: Type.Optional(Type.Boolean()),
})
export type BackupOptions = Static<typeof BackupOptions>

export const ErrorInfo = Type.Object({ code: Type.String(), message: Type.String() })
export type ErrorInfo = Static<typeof ErrorInfo>

export const Verification = Type.Object({
  at: IsoDateTime,
  ok: Type.Boolean(),
  /** e.g. 'sha256+pg_restore', 'sha256+trailer' */
  method: Type.String(),
  message: Type.Optional(Type.String()),
})
export type Verification = Static<typeof Verification>

export const StoredCopy = Type.Object({
  storage: Type.String(),
  status: Type.Union([Type.Literal('completed'), Type.Literal('failed')]),
  error: Type.Optional(ErrorInfo),
})
export type StoredCopy = Static<typeof StoredCopy>

export const TableRowCount = Type.Object({ table: Type.String(), rows: Type.Integer({ minimum: 0 }) })
export type TableRowCount = Static<typeof TableRowCount>

export const Encryption = Type.Object({
  method: Type.Literal('age'),
  recipients: Type.Array(Type.String()),
})
export type Encryption = Static<typeof Encryption>

export const SetMembership = Type.Object({
  id: BackupId,
  name: Type.String(),
  /** the database's size when the set was planned: its weight in the set's progress */
  weightBytes: Type.Integer({ minimum: 0 }),
})
export type SetMembership = Static<typeof SetMembership>

export const Backup = Type.Object({
  id: BackupId,
  /** File (or directory) name inside the backups dir, extension included. */
  name: Type.String(),
  target: Type.String(),
  database: Type.String(),
  format: BackupFormat,
  compression: Compression,
  level: Type.Integer(),
  options: BackupOptions,
  status: BackupStatus,
  createdAt: IsoDateTime,
  startedAt: Type.Optional(IsoDateTime),
  finishedAt: Type.Optional(IsoDateTime),
  /** Bytes stored on disk (after compression; sum of files for directory format). */
  sizeBytes: Type.Optional(Type.Integer()),
  /** Bytes pg_dump produced before our compression. */
  rawBytes: Type.Optional(Type.Integer()),
  /** sha256 of the stored file; for directory format, of the manifest's sorted "sha256  path" lines. */
  sha256: Type.Optional(Type.String()),
  pgServerVersion: Type.Optional(Type.String()),
  pgDumpVersion: Type.Optional(Type.String()),
  tablesCount: Type.Optional(Type.Integer()),
  error: Type.Optional(ErrorInfo),
  createdBy: Type.String(),
  verification: Type.Optional(Verification),
  pinned: Type.Boolean(),
  scheduleId: Type.Optional(Type.String()),
  /** pid of the process running this job, so another process sharing the dir can tell a crash from a live job. */
  ownerPid: Type.Optional(Type.Integer()),
  /** With a shared PostgreSQL catalog: the pgkeep instance that runs (or ran) this job, as in pgkeep.instances. */
  instance: Type.Optional(Type.String()),
  /** What pgkeep chose on the user's behalf, e.g. gzip where the installed pg_dump cannot write the default zstd. */
  notes: Type.Optional(Type.Array(Type.String())),
  /** Where the backup lives (`file:///dir`, `s3://bucket/prefix`); absent for the local backups dir of older records. */
  storage: Type.Optional(Type.String()),
  /** The extra copy destinations this dump was written to at the same time, each with its own outcome. */
  copies: Type.Optional(Type.Array(StoredCopy)),
  /** Set when the stored bytes are age-encrypted: the public keys that can open them (never a private key). */
  encryption: Type.Optional(Encryption),
  /** countRows: every dumped table's rows, counted in the dump's snapshot ("schema"."table" quoted as PostgreSQL quotes) */
  rowCounts: Type.Optional(Type.Array(TableRowCount)),
  /** the last restore drill of this backup; ok = "restore proven" */
  drill: Type.Optional(DrillSummary),
  /** The backup set this backup is a member of (one run over several databases and the globals): see schemas/sets.ts. */
  set: Type.Optional(SetMembership),
  /** `globals`: pg_dumpall --globals-only (roles, memberships, tablespaces) as plain SQL; absent: one database's pg_dump */
  kind: Type.Optional(Type.Literal('globals')),
})
export type Backup = Static<typeof Backup>

export const Progress = Type.Object({
  backupId: BackupId,
  bytes: Type.Integer(),
  /** bytes per second over the recent window */
  rate: Type.Number(),
  percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  etaSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  currentTable: Type.Optional(Type.String()),
  tablesDone: Type.Integer(),
  tablesTotal: Type.Integer(),
})
export type Progress = Static<typeof Progress>

export const BackupWithProgress = Type.Object({ backup: Backup, progress: Type.Optional(Progress) })
export type BackupWithProgress = Static<typeof BackupWithProgress>

/** The reply of create, cancel, validate and pin: the backup as it is after the call. */
export const BackupReply = Type.Object({ backup: Backup })
export type BackupReply = Static<typeof BackupReply>

export const PinRequest = Type.Object({ pinned: Type.Boolean() }, { additionalProperties: false })
export type PinRequest = Static<typeof PinRequest>

export const SortField = Type.Union([
  Type.Literal('createdAt'), Type.Literal('name'), Type.Literal('sizeBytes'),
  Type.Literal('status'), Type.Literal('target'), Type.Literal('duration'),
])
export const ListQuery = Type.Object({
  status: Type.Optional(BackupStatus),
  target: Type.Optional(Type.String({ maxLength: 63 })),
  from: Type.Optional(IsoDateTime),
  to: Type.Optional(IsoDateTime),
  /** case-insensitive substring of name, target, database or createdBy */
  q: Type.Optional(Type.String({ maxLength: 200 })),
  sort: Type.Optional(SortField),
  order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  pageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
}, { additionalProperties: false })
export type ListQuery = Static<typeof ListQuery>

export const ListResult = Type.Object({
  items: Type.Array(Backup),
  total: Type.Integer(),
  page: Type.Integer(),
  pageSize: Type.Integer(),
})
export type ListResult = Static<typeof ListResult>

export const RetentionPolicy = Type.Object({
  keepLast: Type.Optional(Type.Integer({ minimum: 1 })),
  maxAgeDays: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  keepDaily: Type.Optional(Type.Integer({ minimum: 1 })),
  keepWeekly: Type.Optional(Type.Integer({ minimum: 1 })),
  keepMonthly: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false })
export type RetentionPolicy = Static<typeof RetentionPolicy>

export const CleanupRequest = Type.Object({
  policy: Type.Optional(RetentionPolicy),
  target: Type.Optional(Type.String({ maxLength: 63 })),
  dryRun: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })
export type CleanupRequest = Static<typeof CleanupRequest>

export const CleanupResult = Type.Object({
  dryRun: Type.Boolean(),
  deleted: Type.Array(Backup),
  /** why no rule kept each deleted (or, in a dry run, to-be-deleted) backup; same order as deleted */
  deletedReasons: Type.Optional(Type.Array(Type.Object({ id: BackupId, reason: Type.String() }))),
  kept: Type.Array(Type.Object({ id: BackupId, name: Type.String(), reasons: Type.Array(Type.String()) })),
})
export type CleanupResult = Static<typeof CleanupResult>

export const RestoreRequest = Type.Object({
  /** database to restore into */
  database: Type.String({ minLength: 1, maxLength: 63, pattern: '^[^\\u0000-\\u001f]+$' }),
  target: Type.Optional(Type.String({ pattern: TARGET_NAME_PATTERN })),
  create: Type.Optional(Type.Boolean()),
  /** replace an existing database: the backup is restored into a scratch database swapped in on success */
  clean: Type.Optional(Type.Boolean()),
  /** restore into an existing database that already holds objects (in one transaction); without it that is refused */
  merge: Type.Optional(Type.Boolean()),
  jobs: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
}, { additionalProperties: false })
export type RestoreRequest = Static<typeof RestoreRequest>
