import type pg from 'pg'
import type { Target } from '../../config.ts'
import { PgkeepError } from '../../errors.ts'

/** The driver, loaded by the first connection: commands that never connect (list, info, --help) skip its start-up cost. */
let driver: typeof pg | undefined

export async function loadDriver (): Promise<typeof pg> {
  if (driver !== undefined) return driver
  // While it loads, pg asks whether it runs in a Cloudflare Worker: by `navigator.userAgent`, or where there is no
  // navigator (Node 20) by constructing a fetch Response, which loads node's whole fetch implementation (undici,
  // ~40 ms of CPU) for one `false`. Node 21+ has navigator; on Node 20 it is lent for that moment only.
  const lent = globalThis.navigator === undefined
  if (lent) Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node}` }, configurable: true })
  try {
    driver ??= (await import('pg')).default
  } finally {
    if (lent) delete (globalThis as { navigator?: unknown }).navigator
  }
  return driver
}

export const INSPECTOR_APP_NAME = 'pgkeep-inspector'
const CONNECT_TIMEOUT_MS = 5000
// pg_table_size waits behind an ACCESS EXCLUSIVE lock; never let the inspector hang for ever on one
const STATEMENT_TIMEOUT_MS = 60_000

/**
 * libpq sslmodes mapped onto node-postgres, which cannot fall back from TLS to plain:
 * 'prefer'/'allow' therefore connect without TLS, like libpq does when the server has no TLS.
 */
function sslOption (sslmode: string | undefined): pg.ClientConfig['ssl'] {
  switch (sslmode) {
    case 'require': return { rejectUnauthorized: false }
    case 'verify-ca':
    case 'verify-full': return true
    default: return false
  }
}

// network-level failures that a later attempt may not meet: the server restarting, a flaky link
const RETRYABLE_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOENT'])
// 57P01..57P03: admin shutdown, crash shutdown, cannot connect now (starting up); 53300: too many connections
const RETRYABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300'])

function errorCodes (err: unknown): string[] {
  const e = err as { code?: unknown, errors?: unknown[] }
  const codes: string[] = []
  if (typeof e?.code === 'string') codes.push(e.code)
  // Node 20 tries every resolved address and reports an AggregateError holding one error per address
  for (const inner of Array.isArray(e?.errors) ? e.errors : []) {
    const c = (inner as { code?: unknown })?.code
    if (typeof c === 'string') codes.push(c)
  }
  return codes
}

function where (target: Target): string {
  const at = target.host.startsWith('/') ? `socket ${target.host}/.s.PGSQL.${target.port}` : `${target.host}:${target.port}`
  return `target "${target.name}" (${at}, database "${target.database}", user "${target.user}")`
}

/** Belt and braces: a server or driver message must never be the way a password leaks out. */
function scrub (text: string, target: Target): string {
  const pw = target.password
  return pw ? text.split(pw).join('***') : text
}

/**
 * Turns a driver error into the PgkeepError an admin can act on. Transient failures carry
 * details.retryable so withRetry() tries again; the password never appears anywhere in it.
 */
export function connectionError (err: unknown, target: Target): PgkeepError {
  const codes = errorCodes(err)
  // Node's AggregateError (one failure per resolved address) has an empty message
  const raw = scrub(String((err as Error)?.message || codes.join(', ') || err), target)
  // a driver error implies a connection was tried, so the driver is loaded
  const sqlstate = driver !== undefined && err instanceof driver.DatabaseError ? err.code : undefined
  if (sqlstate === '28P01' || sqlstate === '28000') {
    return new PgkeepError('PG_AUTH_FAILED',
      `authentication failed for ${where(target)}: ${raw}; check the password (or password file) and pg_hba.conf`,
      { details: { target: target.name, sqlstate, retryable: false } })
  }
  if (sqlstate === '3D000') {
    return new PgkeepError('PG_CONNECTION_FAILED',
      `database "${target.database}" does not exist on ${where(target)}; check the target's database name`,
      { details: { target: target.name, sqlstate, retryable: false } })
  }
  if (sqlstate !== undefined && RETRYABLE_SQLSTATE.has(sqlstate)) {
    return new PgkeepError('PG_CONNECTION_FAILED', `${where(target)} is not accepting connections right now: ${raw}`,
      { details: { target: target.name, sqlstate, retryable: true } })
  }
  const net = codes.find(c => RETRYABLE_NET.has(c))
  // node-postgres reports its own connect timeout and dropped sockets without an errno code
  const dropped = /timeout|terminated unexpectedly|Connection terminated/i.test(raw)
  if (net !== undefined || dropped) {
    const hint = net === 'ECONNREFUSED' || net === 'ENOENT'
      ? 'is the server running and accepting connections there?'
      : net === 'ENOTFOUND' || net === 'EAI_AGAIN' ? 'check the host name' : 'the server did not answer in time'
    return new PgkeepError('PG_CONNECTION_FAILED', `cannot connect to ${where(target)}: ${raw}; ${hint}`,
      { details: { target: target.name, errno: net, retryable: true } })
  }
  return new PgkeepError('PG_CONNECTION_FAILED', `cannot connect to ${where(target)}: ${raw}`,
    { details: { target: target.name, sqlstate, retryable: false } })
}

/** How node-postgres reaches a target: pgkeep's connections to a target and to the catalog alike. */
export function clientOptions (target: Target, applicationName: string): pg.ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    ssl: sslOption(target.sslmode),
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  }
}

/** Opens a short-lived connection for pgkeep's own questions. The caller must end() it. */
export async function connectTarget (target: Target): Promise<pg.Client> {
  const { Client } = await loadDriver()
  const client = new Client({ ...clientOptions(target, INSPECTOR_APP_NAME), statement_timeout: STATEMENT_TIMEOUT_MS })
  // a server restart or pg_terminate_backend arrives as an 'error' event; unhandled it would kill the process
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw connectionError(err, target)
  }
  return client
}

/**
 * Runs fn on a fresh connection and always ends it. With a signal, an abort cancels the statement running on
 * it (pg_cancel_backend from a second connection): a query waiting on a lock would otherwise sit out the whole
 * statement_timeout, and a cancel or a shutdown with it.
 */
export async function withTargetClient<T> (target: Target, fn: (client: pg.Client) => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
  const { signal } = opts
  signal?.throwIfAborted()
  const client = await connectTarget(target)
  const pid = (client as unknown as { processID?: number }).processID
  const onAbort = (): void => {
    if (pid === undefined) return
    withTargetClient(target, c => c.query('SELECT pg_catalog.pg_cancel_backend($1)', [pid])).catch(() => {})
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    return await fn(client)
  } finally {
    signal?.removeEventListener('abort', onAbort)
    await client.end().catch(() => {})
  }
}

/** server_version_num (e.g. 150018) -> '15.18'; 90624 -> '9.6.24' */
export function versionFromNum (num: number): { version: string, major: number } {
  if (num >= 100000) return { version: `${Math.floor(num / 10000)}.${num % 10000}`, major: Math.floor(num / 10000) }
  const major = Math.floor(num / 10000)
  const minor = Math.floor(num / 100) % 100
  return { version: `${major}.${minor}.${num % 100}`, major }
}
