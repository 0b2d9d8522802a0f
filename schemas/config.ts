import { Type, type Static } from 'typebox'
import { RetentionPolicy, TARGET_NAME_PATTERN, CreateBackupRequest, VerifyMode } from './backup.ts'
import { DrillConfig, DrillSchedule } from './drill.ts'
import { NotificationChannelEntry } from './notifications.ts'

export const TargetConfig = Type.Object({
  /** postgres://user:pass@host:port/db; or the discrete fields below */
  url: Type.Optional(Type.String({ minLength: 1 })),
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  user: Type.Optional(Type.String()),
  database: Type.Optional(Type.String()),
  /** read from a file so the config itself can stay free of secrets */
  passwordFile: Type.Optional(Type.String()),
  sslmode: Type.Optional(Type.String()),
  /** how long a dump may wait for a table lock before failing with LOCK_TIMEOUT (default 60; 0 = wait forever) */
  lockWaitTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400 })),
  /** a dump still running after this long is stopped cleanly and fails with TIMEOUT (default: no limit) */
  maxDurationMinutes: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10080 })),
  /** warn (WebSocket, log, webhook) when a dump's snapshot has held back vacuum this long (default 60; 0 = never) */
  xminWarningMinutes: Type.Optional(Type.Number({ minimum: 0, maximum: 10080 })),
  /** the target's default for a backup's verify (off | after | inline); scheduled backups default to inline */
  verify: Type.Optional(VerifyMode),
  /** restore drills of this target's backups (docs/drills.md); over the global `drill` */
  drill: Type.Optional(DrillConfig),
  /** a whole server: "*" (every database but templates; postgres only when it holds objects) or a list; each backup is then a set (docs/sets.md) */
  databases: Type.Optional(Type.Union([Type.Literal('*'), Type.Array(Type.String({ minLength: 1, maxLength: 63 }), { minItems: 1 })])),
  /** databases left out of "*", as psql/pg_dump patterns (`*`, `?`; "quoted" keeps case) */
  excludeDatabases: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }))),
  /** where databases are discovered and globals dumped from (default postgres) */
  maintenanceDatabase: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
  /** keep role passwords (hashes) in the globals member; default false: pg_dumpall --no-role-passwords */
  globalsRolePasswords: Type.Optional(Type.Boolean()),
  /** this target is "stale" when its newest completed backup is older than this (default: the global staleAfterHours; 0 = never) */
  staleAfterHours: Type.Optional(Type.Number({ minimum: 0, maximum: 8760 })),
}, { additionalProperties: false })

export const ScheduleConfig = Type.Object({
  name: Type.String({ pattern: TARGET_NAME_PATTERN }),
  cron: Type.String({ minLength: 1 }),
  timezone: Type.Optional(Type.String()),
  backup: Type.Optional(CreateBackupRequest),
  retention: Type.Optional(RetentionPolicy),
  enabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })

/** Encryption at rest (age); env PGKEEP_AGE_RECIPIENTS / PGKEEP_AGE_IDENTITY_FILE win over these. See docs/encryption.md. */
export const EncryptionConfig = Type.Object({
  /** age X25519 public keys (age1...) */
  recipients: Type.Optional(Type.Array(Type.String())),
  /** a file of recipients, one per line, # comments (age -R) */
  recipientsFile: Type.Optional(Type.String({ minLength: 1 })),
  /** a private key file (age-keygen -o), mode 0600; needed only to restore, download decrypted or fully validate */
  identityFile: Type.Optional(Type.String({ minLength: 1 })),
}, { additionalProperties: false })

/** The optional JSON file named by PGKEEP_CONFIG: what env vars can't say well. */
export const ConfigFile = Type.Object({
  targets: Type.Optional(Type.Record(Type.String({ pattern: TARGET_NAME_PATTERN }), TargetConfig)),
  concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
  maxQueue: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000 })),
  retention: Type.Optional(RetentionPolicy),
  schedules: Type.Optional(Type.Array(ScheduleConfig)),
  cleanupCron: Type.Optional(Type.String()),
  webhooks: Type.Optional(Type.Array(Type.String({ pattern: '^https?://' }))),
  cancelGraceMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600000 })),
  minFreeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  /** a target whose newest completed backup is older than this is "stale" (dashboard badge, alert); default 26, 0 = never */
  staleAfterHours: Type.Optional(Type.Number({ minimum: 0, maximum: 8760 })),
  downloadVerifyMaxAgeSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  pgBinDir: Type.Optional(Type.String()),
  /** the shared catalog: postgres://USER@HOST:PORT/DATABASE (env PGKEEP_CATALOG_URL wins); absent = files in the backups dir */
  catalog: Type.Optional(Type.String({ minLength: 1 })),
  /** a file holding the catalog user's password, instead of one in the URL (env PGKEEP_CATALOG_PASSWORD_FILE wins) */
  catalogPasswordFile: Type.Optional(Type.String({ minLength: 1 })),
  /** with a catalog: false makes this instance API only, running no jobs (env PGKEEP_WORKER, serve --no-worker) */
  worker: Type.Optional(Type.Boolean()),
  /** with a catalog: a running job's lease, renewed every third of it; default 15 (env PGKEEP_LEASE_SECONDS) */
  leaseSeconds: Type.Optional(Type.Integer({ minimum: 3, maximum: 600 })),
  /** where backups are written: a directory or s3://BUCKET[/PREFIX] (env PGKEEP_STORAGE wins) */
  storage: Type.Optional(Type.String({ minLength: 1 })),
  /** extra destinations every dump is written to at the same time (env PGKEEP_STORAGE_COPIES wins) */
  copies: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  /** path-style S3 addressing (MinIO and most self-hosted stores); env PGKEEP_S3_FORCE_PATH_STYLE wins */
  s3ForcePathStyle: Type.Optional(Type.Boolean()),
  /** S3 multipart part size, 5-64 MiB (default 8); env PGKEEP_S3_PART_SIZE_MB wins */
  s3PartSizeMB: Type.Optional(Type.Integer({ minimum: 5, maximum: 64 })),
  /** every part the same size, as Cloudflare R2 requires (the part size then caps a backup at 10,000 parts); env PGKEEP_S3_EQUAL_PARTS wins */
  s3EqualParts: Type.Optional(Type.Boolean()),
  /** HTTP: see docs/http-api.md (env PGKEEP_ALLOWED_ORIGINS etc. win over these) */
  allowedOrigins: Type.Optional(Type.Array(Type.String())),
  allowedHosts: Type.Optional(Type.Array(Type.String())),
  shutdownGraceSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
  downloadIdleTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
  wsHeartbeatSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
  encryption: Type.Optional(EncryptionConfig),
  /** restore drills: where they run and what they assert (docs/drills.md) */
  drill: Type.Optional(DrillConfig),
  drills: Type.Optional(Type.Array(DrillSchedule)),
  /** notification channels (docs/notifications.md) */
  notifications: Type.Optional(Type.Array(NotificationChannelEntry)),
  /** how often staleness and free space are checked for notifications (default 5) */
  notificationCheckMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440 })),
}, { additionalProperties: false })
export type ConfigFile = Static<typeof ConfigFile>
