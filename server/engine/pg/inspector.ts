import { scrubSecrets } from '../dump/pg-dump-errors.ts'
import type pg from 'pg'
import type { Target } from '../../config.ts'
import { InvalidInputError, PgkeepError } from '../../errors.ts'
import { parseSchemaPattern, parseTablePattern } from './name-pattern.ts'
import { connectionError, versionFromNum, withTargetClient } from './connection.ts'

export { createCopyProgressPoller, readCopyProgress, type CopySample } from './copy-progress.ts'

export interface TableEstimate {
  relid: number
  schema: string
  name: string
  /** heap + TOAST (+ FSM/VM) as pg_table_size reports it; 0 for a schema-only dump */
  bytes: number
  /** the planner's row estimate; -1 when the table was never vacuumed or analysed (PostgreSQL 14+) */
  reltuples: number
}

export interface TargetFacts {
  /** e.g. '15.18' */
  serverVersion: string
  serverMajor: number
  tables: TableEstimate[]
  totalBytes: number
}

export interface DumpScope {
  schemas: string[]
  excludeTables: string[]
  schemaOnly: boolean
  dataOnly: boolean
}

/** Collects bind values; patterns compare under the default collation, as pg_dump 12+ does. */
function sqlParams (): { values: unknown[], param: (v: unknown) => string } {
  const values: unknown[] = []
  return { values, param: (v) => { values.push(v); return `$${values.length}::pg_catalog.text COLLATE pg_catalog.default` } }
}

function schemaClause (target: Target, schemas: string[], param: (v: unknown) => string): string {
  return `(${schemas.map(p => `n.nspname OPERATOR(pg_catalog.~) ${param(parseSchemaPattern(p, target.database).name)}`).join(' OR ')})`
}

/** pg_dump refuses to run when no schema matches any -n pattern: say so before it starts. */
function schemaCheckQuery (target: Target, schemas: string[]): { text: string, values: unknown[] } | undefined {
  if (schemas.length === 0) return undefined
  const { values, param } = sqlParams()
  return { text: `SELECT count(*)::pg_catalog.int4 AS n FROM pg_catalog.pg_namespace n WHERE ${schemaClause(target, schemas, param)}`, values }
}

/**
 * Builds the WHERE clauses that pick the tables pg_dump copies data for. What is counted:
 *  - relkind 'r' only: plain tables and the leaf partitions of partitioned tables (a partitioned
 *    parent holds no rows; pg_dump copies each leaf on its own);
 *  - not materialized views (their data is a REFRESH at restore time, no COPY while dumping),
 *    not foreign tables (pgkeep never passes --include-foreign-data), not sequences;
 *  - not in pg_* schemas or information_schema; not tables that belong to an extension, except
 *    the extension's configuration tables when no schema filter is given (pg_dump dumps extensions,
 *    and so their config data, only when it dumps everything).
 * Unqualified -T patterns match only tables visible on the role's default search_path, as pg_dump
 * does (it RESETs search_path for that lookup); this connection leaves search_path untouched.
 */
function tableQuery (target: Target, scope: DumpScope): { text: string, values: unknown[] } {
  const { values, param } = sqlParams()
  const where: string[] = [
    `c.relkind = 'r'`,
    `n.nspname <> 'information_schema'`,
    `n.nspname !~ '^pg_'`,
  ]
  const extConfig = scope.schemas.length === 0
    ? ' OR c.oid IN (SELECT pg_catalog.unnest(e.extconfig) FROM pg_catalog.pg_extension e)'
    : ''
  where.push(`(c.oid NOT IN (SELECT d.objid FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
        AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e')${extConfig})`)
  if (scope.schemas.length > 0) where.push(schemaClause(target, scope.schemas, param))
  for (const p of scope.excludeTables) {
    const pat = parseTablePattern(p, target.database)
    const inSchema = pat.schema === undefined
      ? 'pg_catalog.pg_table_is_visible(c.oid)'
      : `n.nspname OPERATOR(pg_catalog.~) ${param(pat.schema)}`
    where.push(`NOT (${inSchema} AND c.relname OPERATOR(pg_catalog.~) ${param(pat.name)})`)
  }
  const size = scope.schemaOnly ? '0' : 'coalesce(pg_catalog.pg_table_size(c.oid), 0)'
  const text = `SELECT c.oid::pg_catalog.int8 AS relid, n.nspname AS schema, c.relname AS name,
      ${size}::pg_catalog.int8 AS bytes, c.reltuples::pg_catalog.float8 AS reltuples
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE ${where.join('\n      AND ')}
    ORDER BY n.nspname, c.relname`
  return { text, values }
}

async function serverVersion (client: pg.Client): Promise<{ version: string, major: number }> {
  const { rows } = await client.query<{ num: string }>(`SELECT pg_catalog.current_setting('server_version_num') AS num`)
  return versionFromNum(Number(rows[0].num))
}

/**
 * Asks the target, before the dump starts, which tables pg_dump will copy and how big they are
 * on disk, so progress can be weighted by size. Connection failures become PG_AUTH_FAILED or
 * PG_CONNECTION_FAILED (details.retryable for transient ones); bad patterns, and schema patterns
 * of which none matches (pg_dump would stop on them), INVALID_INPUT.
 */
export async function inspectTarget (target: Target, scope: DumpScope, opts: { signal?: AbortSignal } = {}): Promise<TargetFacts> {
  // parse the patterns first: a typo should not cost a connection attempt
  const query = tableQuery(target, scope)
  const schemaCheck = schemaCheckQuery(target, scope.schemas)
  return await withTargetClient(target, async (client) => {
    try {
      const { version, major } = await serverVersion(client)
      if (schemaCheck && (await client.query<{ n: number }>(schemaCheck)).rows[0].n === 0) {
        throw new InvalidInputError(`no schema in database "${target.database}" matches ${scope.schemas.map(p => `"${p}"`).join(', ')}; pg_dump would fail with "no matching schemas were found"`, 'schemas')
      }
      // measuring a table's size takes its ACCESS SHARE lock, as pg_dump will: the same wait limit applies
      const lockWait = target.lockWaitTimeoutSeconds ?? 0
      if (lockWait > 0) await client.query(`SET lock_timeout = '${lockWait}s'`)
      const { rows } = await client.query<{ relid: string, schema: string, name: string, bytes: string, reltuples: number }>(query)
      const tables = rows.map(r => ({ relid: Number(r.relid), schema: r.schema, name: r.name, bytes: Number(r.bytes), reltuples: r.reltuples }))
      return { serverVersion: version, serverMajor: major, tables, totalBytes: tables.reduce((sum, t) => sum + t.bytes, 0) }
    } catch (err) {
      if (err instanceof PgkeepError) throw err
      if ((err as { code?: string }).code === '55P03') {
        throw new PgkeepError('LOCK_TIMEOUT', `measuring the tables before the dump waited ${target.lockWaitTimeoutSeconds} s for a table lock: another session holds a conflicting lock`)
      }
      const e = connectionError(err, target)
      throw new PgkeepError(e.code, `inspecting ${e.message.replace(/^cannot connect to /, '')}`, { details: e.details })
    }
  }, opts)
}

/** pg_dump can dump servers of its own major version and older, and (pg_dump 15+) none older than 9.2. */
export function checkDumpCompatible (pgDumpMajor: number, serverMajor: number): void {
  if (serverMajor > pgDumpMajor) {
    throw new PgkeepError('PG_VERSION_MISMATCH',
      `the server runs PostgreSQL ${serverMajor} but the newest pg_dump found is version ${pgDumpMajor}, and pg_dump cannot dump a newer server; ` +
      `install the PostgreSQL ${serverMajor} client tools (the postgresql-client-${serverMajor} package, from the PGDG apt repository apt.postgresql.org ` +
      `on Debian/Ubuntu) or point PGKEEP_PG_BIN_DIR at them`,
      { details: { pgDumpMajor, serverMajor } })
  }
  if (pgDumpMajor >= 15 && serverMajor < 9) {
    throw new PgkeepError('PG_VERSION_MISMATCH',
      `pg_dump ${pgDumpMajor} cannot dump PostgreSQL ${serverMajor} (it supports 9.2 and later); use pg_dump 14 or older for this server`,
      { details: { pgDumpMajor, serverMajor } })
  }
}

/**
 * Who stands between a dump and its ACCESS SHARE lock on `relation` (pg_dump's quoted name; without one, on any
 * table of the database): every backend holding or queued for ACCESS EXCLUSIVE on it, and what a queued one waits behind (pg_blocking_pids), in words
 * for the failure message. Their queries are clipped and scrubbed of quoted passwords. Empty when they are gone.
 */
export async function lockHolders (target: Target, relation?: string): Promise<string[]> {
  const { rows } = await withTargetClient(target, async c => await c.query<{ pid: number, usename: string | null, application_name: string, granted: boolean, seconds: number | null, query: string | null, behind: number[] }>(`
    SELECT a.pid, a.usename, a.application_name, l.granted,
           extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::int AS seconds,
           left(a.query, 200) AS query, pg_catalog.pg_blocking_pids(a.pid) AS behind
      FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND a.pid <> pg_catalog.pg_backend_pid()
       AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
       AND ($1::text IS NULL OR l.relation = pg_catalog.to_regclass($1))
     ORDER BY l.granted DESC, a.pid`, [relation ?? null]))
  return rows.map(r => {
    const who = `backend ${r.pid} (${r.usename ?? '?'}${r.application_name ? `, ${r.application_name}` : ''})`
    const what = r.granted ? `holds an ACCESS EXCLUSIVE lock${r.seconds !== null ? ` in a transaction open for ${r.seconds} s` : ''}` : `is queued for an ACCESS EXCLUSIVE lock behind backend(s) ${r.behind.join(', ') || '?'}`
    return `${who} ${what}${r.query ? `: ${scrubSecrets(r.query.replace(/\s+/g, ' ').trim())}` : ''}`
  })
}

const CANCEL_WAIT_MS = 1000
const CANCEL_POLL_MS = 100

async function pidsOf (client: pg.Client, applicationName: string): Promise<number[]> {
  const { rows } = await client.query<{ pid: number }>(
    `SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name = $1 AND pid <> pg_catalog.pg_backend_pid()`,
    [applicationName])
  return rows.map(r => r.pid)
}

async function waitGone (client: pg.Client, applicationName: string, pids: number[]): Promise<number[]> {
  const deadline = Date.now() + CANCEL_WAIT_MS
  for (;;) {
    const left = (await pidsOf(client, applicationName)).filter(p => pids.includes(p))
    if (left.length === 0 || Date.now() >= deadline) return left
    await new Promise(resolve => setTimeout(resolve, CANCEL_POLL_MS))
  }
}

/**
 * Stops the server side of a job: a killed pg_dump's backend may keep copying (and holding
 * locks) until it next writes to the dead socket. Cancels first, terminates what is still there
 * after about a second. Returns how many backends had that application_name.
 */
export async function cancelBackends (target: Target, applicationName: string): Promise<number> {
  return await withTargetClient(target, async (client) => {
    const pids = await pidsOf(client, applicationName)
    if (pids.length === 0) return 0
    await client.query('SELECT pg_catalog.pg_cancel_backend(p) FROM pg_catalog.unnest($1::pg_catalog.int4[]) AS p', [pids])
    const left = await waitGone(client, applicationName, pids)
    if (left.length > 0) {
      await client.query('SELECT pg_catalog.pg_terminate_backend(p) FROM pg_catalog.unnest($1::pg_catalog.int4[]) AS p', [left])
    }
    return pids.length
  })
}
