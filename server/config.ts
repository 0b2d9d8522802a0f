import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { userInfo } from 'node:os'
import { resolve } from 'node:path'
import { parse as parseConnectionString } from 'pg-connection-string'
import { compileOnUse } from './compile-on-use.ts'
import { ConfigFile } from '../schemas/config.ts'
import type { RetentionPolicy } from '../schemas/backup.ts'
import type { Static } from 'typebox'
import { PgkeepError } from './errors.ts'
import { describeSchemaErrors, nameProblem } from './config-problems.ts'
import { encryptionConfig, type EncryptionConfig } from './config-encryption.ts'
import { drillSchedules, drillSettings, type DrillSettings } from './config-drills.ts'
import type { DrillSchedule } from '../schemas/drill.ts'
import { notificationsConfig, type NotificationsConfig } from './config-notifications.ts'
import { cronProblem, scheduleProblem } from './schedules/schedule-rules.ts'
import { parseStorageUrl, s3Url, type StorageLocation } from './engine/storage/storage-url.ts'

/** A resolved PostgreSQL connection. The password stays in memory and only ever reaches a 0600 passfile. */
export interface Target {
  name: string
  host: string
  port: number
  user: string
  database: string
  password?: string
  sslmode?: string
  /** pg_dump's --lock-wait-timeout; 0 or absent = wait forever (loadConfig sets 60 unless told otherwise) */
  lockWaitTimeoutSeconds?: number
  /** a dump running longer is stopped and fails with TIMEOUT */
  maxDurationMinutes?: number
  /** warn when a dump's snapshot holds vacuum back this long; absent = 60, 0 = never */
  xminWarningMinutes?: number
  /** default verify for this target's backups; absent: after for scheduled ones, off otherwise */
  verify?: 'off' | 'after' | 'inline'
  /** a whole server: every backup of this target is a set (engine/sets) */
  databases?: '*' | string[]
  excludeDatabases?: string[]
  /** where sets discover databases and dump globals from; absent = postgres */
  maintenanceDatabase?: string
  /** globals keep role password hashes (otherwise pg_dumpall --no-role-passwords) */
  globalsRolePasswords?: boolean
  /** this target's own stale age (hours; 0 = never); absent = Config.staleAfterHours. Read it through staleAfterHoursOf */
  staleAfterHours?: number
}

export interface Config {
  /** pgkeep's own state: registry, users, tokens, audit, schedules; and the default storage */
  backupDir: string
  storage: StorageConfig
  /** the shared PostgreSQL catalog (server/catalog); absent = the file catalog in backupDir */
  catalog?: Target
  /** with a catalog: whether this instance runs queued jobs (false: `serve --no-worker`, API only) */
  worker: boolean
  /** with a catalog: how long a running job's lease lasts without renewal before another instance calls it interrupted */
  leaseSeconds: number
  host: string
  port: number
  /** proxies whose X-Forwarded-For/-Proto are believed: a hop count or their addresses/CIDRs; none when absent */
  trustProxy?: number | string[]
  jwtSecret?: string
  /** true when no PGKEEP_JWT_SECRET was given and we run on the embedded default */
  dev: boolean
  targets: Record<string, Target>
  concurrency: number
  maxQueue: number
  retention?: RetentionPolicy
  schedules: Static<typeof ConfigFile>['schedules'] & {}
  cleanupCron?: string
  /** the config file's plain webhook URLs: generic webhook channels with the events they always had */
  webhooks: string[]
  /** notification channels and what they watch (config-notifications.ts) */
  notifications: NotificationsConfig
  cancelGraceMs: number
  minFreeBytes: number
  /** a target whose newest completed backup is older than this many hours is stale (0 = never); a target may say its own */
  staleAfterHours: number
  downloadVerifyMaxAgeSeconds: number
  /** directory holding pg_dump/pg_restore/psql; found automatically when absent */
  pgBinDir?: string
  logLevel: string
  http: HttpConfig
  /** age encryption at rest; undefined when neither recipients nor an identity is configured */
  encryption?: EncryptionConfig
  /** restore drills per target (server/config-drills.ts); absent in hand-made configs: the target's own server, no assertions */
  drill?: Record<string, DrillSettings<Target>>
  drillSchedules?: DrillSchedule[]
}

/** Where backups are written (server/engine/storage): each a local directory (absolute) or `s3://bucket[/prefix]`. */
export interface StorageConfig {
  primary: string
  copies: string[]
  forcePathStyle: boolean
  /** S3 multipart part size in bytes (default 8 MiB) */
  partBytes?: number
  /** S3 parts all of one size (Cloudflare R2), instead of growing past 1,000 parts */
  equalParts?: boolean
}

/** What the HTTP server checks and how long it waits (server/http). */
export interface HttpConfig {
  /** origins besides the server's own that may make cookie-authenticated changes, e.g. https://ops.example */
  allowedOrigins: string[]
  /** Host names the server answers to besides its loopback names (DNS rebinding); empty = any, off loopback */
  allowedHosts: string[]
  /** SIGTERM/SIGINT -> process exit, at most */
  shutdownGraceMs: number
  /** a download whose client reads nothing for this long is cut */
  downloadIdleTimeoutMs: number
  /** WebSocket ping period; a viewer silent for a whole period is dropped */
  wsHeartbeatMs: number
  /** how often an open WebSocket's session or token is checked again (logout, revocation, removal, role) */
  wsRecheckMs: number
}

const checkConfigFile = compileOnUse(ConfigFile)

function fail (name: string, why: string): never {
  throw new PgkeepError('CONFIG_INVALID', `invalid configuration: ${name}: ${why}`)
}

function intFromEnv (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw)) fail(name, `expected an integer, got "${raw}"`)
  const n = Number(raw)
  if (n < min || n > max) fail(name, `must be between ${min} and ${max}`)
  return n
}

function boolFromEnv (env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase()
  if (raw === undefined || raw === '') return fallback
  if (!['true', 'false', '1', '0'].includes(raw)) fail(name, 'must be true or false')
  return raw === 'true' || raw === '1'
}

/** proxy-addr's names for the usual private ranges, accepted as they are */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * PGKEEP_TRUST_PROXY: "1" (hops: believe that many proxies in front, counted from the right of X-Forwarded-For)
 * or "10.0.0.5, 10.1.0.0/16" (believe only these peers). Never "trust everything": the left-most address of the
 * header is whatever the client wrote, and it must not pick the IP that rate limits and the audit log key on.
 */
function trustProxyFromEnv (env: NodeJS.ProcessEnv): number | string[] | undefined {
  const raw = env.PGKEEP_TRUST_PROXY?.trim()
  if (!raw) return undefined
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw)
    if (hops > 10) fail('PGKEEP_TRUST_PROXY', `${hops} hops is more proxies than any real setup; give the count in front of pgkeep`)
    return hops === 0 ? undefined : hops
  }
  return raw.split(',').map(s => s.trim()).map(entry => {
    const [address, prefix, extra] = entry.split('/')
    const family = isIP(address ?? '')
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32))
    if ((family && prefixOk && extra === undefined) || PROXY_RANGE_NAMES.includes(entry)) return entry
    fail('PGKEEP_TRUST_PROXY', `"${entry}" is not a hop count, an IP address, a CIDR (10.0.0.0/8) or one of ${PROXY_RANGE_NAMES.join(', ')}`)
  })
}

/** A dump that cannot get a table's lock within this fails (LOCK_TIMEOUT) instead of queueing behind a DDL. */
const DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS = 60
/** a daily schedule plus two hours of slack for a slow dump: one missed night makes a target stale */
const DEFAULT_STALE_AFTER_HOURS = 26

function targetFromUrl (name: string, url: string, env: NodeJS.ProcessEnv, field = `targets.${name}.url`): Target {
  // the URL may carry a password: the messages below name the field and the scheme, never the URL
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]
  if (scheme === undefined) fail(field, 'has no scheme; expected postgres://user@host:port/database')
  if (!/^postgres(ql)?$/i.test(scheme) || !/^[^:]+:\/\//.test(url)) {
    fail(field, `"${scheme}:" is not a PostgreSQL URL; expected postgres://user@host:port/database`)
  }
  let parsed
  try {
    parsed = parseConnectionString(url)
  } catch {
    fail(field, 'is not a valid postgres:// URL (check the port and any %-escapes)')
  }
  const user = parsed.user || env.PGUSER || userInfo().username
  return {
    name,
    host: parsed.host || env.PGHOST || '/var/run/postgresql',
    port: parsed.port ? Number(parsed.port) : Number(env.PGPORT || 5432),
    user,
    database: parsed.database || user,
    password: parsed.password || undefined,
    sslmode: typeof parsed.ssl === 'string' ? parsed.ssl : (parsed as { sslmode?: string }).sslmode,
    lockWaitTimeoutSeconds: DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
  }
}

function targetFromFields (name: string, t: NonNullable<ConfigFile['targets']>[string], env: NodeJS.ProcessEnv, baseDir: string): Target {
  const base = t.url ? targetFromUrl(name, t.url, env) : targetFromUrl(name, 'postgres://', env)
  let password = base.password
  if (t.passwordFile) {
    try {
      password = readFileSync(resolve(baseDir, t.passwordFile), 'utf8').replace(/\r?\n$/, '')
    } catch {
      fail(`targets.${name}.passwordFile`, 'cannot be read')
    }
  }
  return {
    name,
    host: t.host ?? base.host,
    port: t.port ?? base.port,
    user: t.user ?? base.user,
    database: t.database ?? base.database,
    password,
    sslmode: t.sslmode ?? base.sslmode,
    lockWaitTimeoutSeconds: t.lockWaitTimeoutSeconds ?? DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
    ...(t.maxDurationMinutes !== undefined ? { maxDurationMinutes: t.maxDurationMinutes } : {}),
    ...(t.xminWarningMinutes !== undefined ? { xminWarningMinutes: t.xminWarningMinutes } : {}),
    ...(t.verify !== undefined ? { verify: t.verify } : {}),
    ...(t.databases !== undefined ? { databases: t.databases } : {}),
    ...(t.excludeDatabases !== undefined ? { excludeDatabases: t.excludeDatabases } : {}),
    ...(t.maintenanceDatabase !== undefined ? { maintenanceDatabase: t.maintenanceDatabase } : {}),
    ...(t.globalsRolePasswords !== undefined ? { globalsRolePasswords: t.globalsRolePasswords } : {}),
    ...(t.staleAfterHours !== undefined ? { staleAfterHours: t.staleAfterHours } : {}),
  }
}

/** Hours after its newest completed backup that a target counts as stale (0 = never): its own setting, else the global one. */
export function staleAfterHoursOf (config: Pick<Config, 'staleAfterHours' | 'targets'>, targetName: string): number {
  return config.targets[targetName]?.staleAfterHours ?? config.staleAfterHours
}

/** What the file's schema cannot say: target names (record keys), cron patterns, a policy that names no rule. */
function checkFileRules (file: ConfigFile): void {
  for (const name of Object.keys(file.targets ?? {})) {
    const why = nameProblem(name)
    if (why) fail(`targets.${JSON.stringify(name)}`, `a target name ${why}`)
  }
  if (file.retention && Object.keys(file.retention).length === 0) {
    fail('retention', 'the policy is empty: set keepLast, maxAgeDays, keepDaily, keepWeekly or keepMonthly')
  }
  if (file.cleanupCron !== undefined) {
    const problem = cronProblem(file.cleanupCron)
    if (problem) fail('cleanupCron', problem.why)
  }
}

/** Every schedule is checked as the API checks one, so a typo stops the start, not a run at 2 a.m. */
function checkSchedules (file: ConfigFile, targetNames: string[]): void {
  const seen = new Set<string>()
  for (const [i, s] of (file.schedules ?? []).entries()) {
    if (seen.has(s.name)) fail(`schedules[${i}].name`, `"${s.name}" is used by an earlier schedule`)
    seen.add(s.name)
    const problem = scheduleProblem({ ...s, timezone: s.timezone || undefined }, targetNames)
    if (problem) fail(`schedules[${i}].${problem.field}`, problem.why)
  }
}

/**
 * Reads and validates the whole configuration once, at start-up. Nothing else reads process.env.
 * A bad value throws CONFIG_INVALID naming it; the entry points print that one line and exit 2.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  let file: ConfigFile = {}
  let fileDir = process.cwd()
  if (env.PGKEEP_CONFIG) {
    const path = resolve(env.PGKEEP_CONFIG)
    fileDir = resolve(path, '..')
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'))
    } catch (err) {
      fail('PGKEEP_CONFIG', `cannot read ${path} as JSON (${(err as Error).message})`)
    }
    if (!checkConfigFile.Check(raw)) {
      const problem = describeSchemaErrors([...checkConfigFile.Errors(raw)])
      fail(problem.field || `PGKEEP_CONFIG ${path}`, problem.why)
    }
    file = raw
    checkFileRules(file)
  }

  const targets: Record<string, Target> = {}
  for (const [name, t] of Object.entries(file.targets ?? {})) targets[name] = targetFromFields(name, t, env, fileDir)
  if (env.DATABASE_URL) targets.default = targetFromUrl('default', env.DATABASE_URL, env, 'DATABASE_URL')
  else if (!targets.default && Object.keys(targets).length === 0) targets.default = targetFromUrl('default', 'postgres://', env)

  checkSchedules(file, Object.keys(targets))

  const jwtSecret = env.PGKEEP_JWT_SECRET || undefined
  if (jwtSecret !== undefined && jwtSecret.length < 32) fail('PGKEEP_JWT_SECRET', 'must be at least 32 characters')

  const backupDir = resolve(env.PGKEEP_BACKUP_DIR || './backups')
  return {
    backupDir,
    storage: storageConfig(env, file, backupDir, fileDir),
    catalog: catalogTarget(env, file, fileDir),
    worker: boolFromEnv(env, 'PGKEEP_WORKER', file.worker ?? true),
    leaseSeconds: intFromEnv(env, 'PGKEEP_LEASE_SECONDS', file.leaseSeconds ?? 15, 3, 600),
    host: env.PGKEEP_HOST || '127.0.0.1',
    port: intFromEnv(env, 'PGKEEP_PORT', 8080, 0, 65535),
    trustProxy: trustProxyFromEnv(env),
    jwtSecret,
    dev: jwtSecret === undefined,
    targets,
    concurrency: intFromEnv(env, 'PGKEEP_CONCURRENCY', file.concurrency ?? 1, 1, 16),
    maxQueue: file.maxQueue ?? 100,
    retention: file.retention,
    schedules: file.schedules ?? [],
    cleanupCron: file.cleanupCron,
    webhooks: file.webhooks ?? [],
    notifications: notificationsConfig(env, file, fileDir),
    cancelGraceMs: file.cancelGraceMs ?? 5000,
    minFreeBytes: file.minFreeBytes ?? 1024 ** 3,
    staleAfterHours: file.staleAfterHours ?? DEFAULT_STALE_AFTER_HOURS,
    downloadVerifyMaxAgeSeconds: file.downloadVerifyMaxAgeSeconds ?? 3600,
    pgBinDir: env.PGKEEP_PG_BIN_DIR || file.pgBinDir,
    logLevel: env.PGKEEP_LOG_LEVEL || 'info',
    http: httpConfig(env, file),
    encryption: encryptionConfig(env, file, fileDir),
    drill: drillSettings(file, targets, (name, url, field) => targetFromUrl(name, url, env, field), fileDir),
    drillSchedules: drillSchedules(file, Object.keys(targets)),
  }
}

/** The shared catalog's connection: a URL (env or file) and, optionally, a password file (kept out of the URL, argv and logs). */
function catalogTarget (env: NodeJS.ProcessEnv, file: ConfigFile, fileDir: string): Target | undefined {
  const fromEnv = env.PGKEEP_CATALOG_URL?.trim()
  const url = fromEnv || file.catalog
  if (url === undefined || url === '') return undefined
  const target = targetFromUrl('catalog', url, env, fromEnv ? 'PGKEEP_CATALOG_URL' : 'catalog')
  const passwordFile = env.PGKEEP_CATALOG_PASSWORD_FILE?.trim()
    ? resolve(env.PGKEEP_CATALOG_PASSWORD_FILE.trim())
    : file.catalogPasswordFile !== undefined ? resolve(fileDir, file.catalogPasswordFile) : undefined
  if (passwordFile !== undefined) {
    try {
      target.password = readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '')
    } catch {
      fail(env.PGKEEP_CATALOG_PASSWORD_FILE ? 'PGKEEP_CATALOG_PASSWORD_FILE' : 'catalogPasswordFile', 'cannot be read')
    }
  }
  // the catalog is pgkeep's own database, not something it dumps: no lock-wait default to carry
  delete target.lockWaitTimeoutSeconds
  return target
}

/** A storage location as written by the user: `s3://bucket[/prefix]`, `file:///dir`, or a path (relative to `baseDir`). */
function storageLocation (name: string, text: string, baseDir: string): string {
  let where: StorageLocation
  try {
    where = parseStorageUrl(text.trim())
  } catch (err) {
    fail(name, (err as Error).message)
  }
  return where.kind === 's3' ? s3Url(where.bucket, where.prefix) : resolve(baseDir, where.dir)
}

function storageConfig (env: NodeJS.ProcessEnv, file: ConfigFile, backupDir: string, fileDir: string): StorageConfig {
  const primary = env.PGKEEP_STORAGE?.trim()
    ? storageLocation('PGKEEP_STORAGE', env.PGKEEP_STORAGE, process.cwd())
    : file.storage !== undefined ? storageLocation('storage', file.storage, fileDir) : backupDir
  const fromEnv = listFrom(env, 'PGKEEP_STORAGE_COPIES')
  const copies = fromEnv.length > 0
    ? fromEnv.map(c => storageLocation('PGKEEP_STORAGE_COPIES', c, process.cwd()))
    : (file.copies ?? []).map((c, i) => storageLocation(`copies[${i}]`, c, fileDir))
  const all = [primary, ...copies]
  const twice = all.find((loc, i) => all.indexOf(loc) !== i)
  if (twice !== undefined) fail(fromEnv.length > 0 ? 'PGKEEP_STORAGE_COPIES' : 'copies', `${twice} is named twice; every copy needs a destination of its own`)
  const forcePathStyle = boolFromEnv(env, 'PGKEEP_S3_FORCE_PATH_STYLE', file.s3ForcePathStyle ?? false)
  const partMb = intFromEnv(env, 'PGKEEP_S3_PART_SIZE_MB', file.s3PartSizeMB ?? 8, 5, 64)
  const equalParts = boolFromEnv(env, 'PGKEEP_S3_EQUAL_PARTS', file.s3EqualParts ?? false)
  return { primary, copies, forcePathStyle, partBytes: partMb * 1024 * 1024, equalParts }
}

function listFrom (env: NodeJS.ProcessEnv, name: string, fallback: string[] = []): string[] {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  return raw.split(',').map(s => s.trim()).filter(Boolean)
}

/** `https://ops.example:8443` as the browser sends it in Origin: scheme, host, port only. */
function originOf (name: string, text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    fail(name, `"${text}" is not an origin like https://ops.example`)
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username) {
    fail(name, `"${text}" is not an origin like https://ops.example (scheme, host and port only)`)
  }
  return url.origin
}

/** A Host name as it appears in the Host header without its port: lower case, IPv6 in brackets. */
function hostNameOf (name: string, text: string): string {
  const host = /^[0-9a-f:]+$/i.test(text) && text.includes(':') ? `[${text}]` : text
  let url: URL
  try {
    url = new URL(`http://${host}`)
  } catch {
    fail(name, `"${text}" is not a host name`)
  }
  if (url.port || url.pathname !== '/' || url.username) fail(name, `"${text}" is not a host name (no port, no path)`)
  return url.hostname
}

function httpConfig (env: NodeJS.ProcessEnv, file: ConfigFile): HttpConfig {
  const seconds = (name: string, fallback: number, max: number): number => intFromEnv(env, name, fallback, 1, max) * 1000
  return {
    allowedOrigins: listFrom(env, 'PGKEEP_ALLOWED_ORIGINS', file.allowedOrigins).map(o => originOf('PGKEEP_ALLOWED_ORIGINS', o)),
    allowedHosts: listFrom(env, 'PGKEEP_ALLOWED_HOSTS', file.allowedHosts).map(h => hostNameOf('PGKEEP_ALLOWED_HOSTS', h)),
    shutdownGraceMs: seconds('PGKEEP_SHUTDOWN_GRACE_SECONDS', file.shutdownGraceSeconds ?? 10, 3600),
    downloadIdleTimeoutMs: seconds('PGKEEP_DOWNLOAD_IDLE_TIMEOUT_SECONDS', file.downloadIdleTimeoutSeconds ?? 60, 86400),
    wsHeartbeatMs: seconds('PGKEEP_WS_HEARTBEAT_SECONDS', file.wsHeartbeatSeconds ?? 30, 3600),
    wsRecheckMs: 5000,
  }
}
