import type pg from 'pg'
import type { Target } from '../../config.ts'
import { PgkeepError } from '../../errors.ts'
import { withTargetClient } from '../pg/connection.ts'

/**
 * The database pgkeep connects to for its own work around a restore (CREATE/DROP/RENAME DATABASE,
 * cancelling backends): never the one being restored, which may be renamed or dropped.
 */
export function adminTarget (target: Target, restoreDb: string): Target {
  return { ...target, database: restoreDb === 'postgres' ? 'template1' : 'postgres' }
}

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

// PostgreSQL keeps 63 bytes of a name (NAMEDATALEN - 1) and silently cuts longer ones
const MAX_NAME_BYTES = 63

/**
 * `<database>__pgkeep_restore_<id>` (the scratch database a restore fills) or `<database>__pgkeep_old_<id>`
 * (the replaced database, between the swap and its drop). The database part is shortened, on a character
 * boundary, so the whole name fits; the id part (the restore id's random tail) keeps names apart.
 */
export function sideName (database: string, role: 'restore' | 'old', restoreId: string): string {
  const suffix = `__pgkeep_${role}_${restoreId.replace(/-/g, '').slice(-8)}`
  const chars = [...database]
  while (chars.length > 0 && Buffer.byteLength(chars.join('') + suffix) > MAX_NAME_BYTES) chars.pop()
  return chars.join('') + suffix
}

/** What a restore finds where it is asked to write. */
export interface Destination {
  exists: boolean
  oid?: number
  /** up to 100 user objects found in it ("table public.items"), empty when there are none */
  objects: string[]
  /** other sessions connected to it right now */
  sessions: number
  serverVersionNum: number
}

// user-made objects: outside pg_catalog/information_schema/pg_toast, not created by an extension; plpgsql
// (in every new database) and the empty public schema do not count
const USER_OBJECTS = `
  WITH user_ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'),
  ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
  SELECT d FROM (
    SELECT 'schema ' || quote_ident(nspname) AS d FROM user_ns WHERE nspname <> 'public' AND oid NOT IN (SELECT objid FROM ext)
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence ' WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
           || c.oid::regclass::text
      FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.oid NOT IN (SELECT objid FROM ext)
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
      WHERE p.oid NOT IN (SELECT objid FROM ext)
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace
      WHERE t.typtype IN ('b', 'd', 'e', 'r') AND t.typcategory <> 'A' AND t.oid NOT IN (SELECT objid FROM ext)
    UNION ALL
    SELECT 'extension ' || quote_ident(extname) FROM pg_extension WHERE extname <> 'plpgsql'
  ) o ORDER BY 1 LIMIT 100`

/** Looks at the database a restore is asked to write: there or not, what it holds, who is connected. */
export async function inspectDestination (target: Target, db: string): Promise<Destination> {
  const found = await withTargetClient(adminTarget(target, db), async client => {
    const r = await client.query<{ oid: string, sessions: string, v: string }>(`
      SELECT d.oid, (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid AND a.pid <> pg_backend_pid()) AS sessions,
             current_setting('server_version_num') AS v
      FROM pg_database d WHERE d.datname = $1`, [db])
    const v = r.rows[0]?.v ?? (await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v
    return { row: r.rows[0], serverVersionNum: Number(v) }
  })
  if (!found.row) return { exists: false, objects: [], sessions: 0, serverVersionNum: found.serverVersionNum }
  const oid = Number(found.row.oid)
  const objects = await withTargetClient({ ...target, database: db }, async client =>
    (await client.query<{ d: string }>(USER_OBJECTS)).rows.map(r => r.d))
  const sessions = Number(found.row.sessions) > 0 ? await sessionsAfterGrace(target, db, oid) : 0
  return { exists: true, oid, objects, sessions, serverVersionNum: found.serverVersionNum }
}

// what DROP DATABASE itself allows (CountOtherDBBackends): a client that just disconnected leaves a backend
// that takes a moment to exit, and a psql closed a second ago must not make a restore refuse
const SESSION_GRACE_MS = 5000

/** Other sessions on the database, once those on their way out have had SESSION_GRACE_MS to go. */
async function sessionsAfterGrace (target: Target, db: string, oid: number): Promise<number> {
  return await withTargetClient(adminTarget(target, db), async client => {
    const deadline = Date.now() + SESSION_GRACE_MS
    for (;;) {
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_catalog.pg_stat_activity WHERE datid = $1 AND pid <> pg_catalog.pg_backend_pid()', [oid])
      const n = Number(rows[0].n)
      if (n === 0 || Date.now() >= deadline) return n
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  })
}

function sqlError (err: unknown, db: string, target: Target, doing: string): PgkeepError {
  if (err instanceof PgkeepError) return err
  const e = err as { code?: string, message?: string }
  // 55006: other sessions are connected; RENAME and DROP refuse rather than cut them off
  if (e?.code === '55006') return new PgkeepError('CONFLICT', `database "${db}" on target "${target.name}" is in use by other sessions; disconnect them and restore again`)
  if (e?.code === '42P04') return new PgkeepError('CONFLICT', `database "${db}" already exists on target "${target.name}"`)
  if (e?.code === '42501') return new PgkeepError('PG_RESTORE_FAILED', `user "${target.user}" may not ${doing} database "${db}": ${e.message}`)
  return new PgkeepError('PG_RESTORE_FAILED', `${doing} database "${db}" failed: ${e?.message ?? String(err)}`)
}

/**
 * Creates the scratch database: with the dumped database's CREATE DATABASE (encoding, locale) when the
 * archive has one, else from template0 so nothing from a customised template1 collides with the dump.
 * Returns its oid, which tells after a crash whether the swap happened.
 */
export async function createDatabase (target: Target, name: string, createSql?: (quoted: string) => string): Promise<number> {
  return await withTargetClient(adminTarget(target, name), async client => {
    try {
      await client.query(createSql ? createSql(quoteIdent(name)) : `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`)
      const r = await client.query<{ oid: string }>('SELECT oid FROM pg_database WHERE datname = $1', [name])
      return Number(r.rows[0].oid)
    } catch (err) {
      throw sqlError(err, name, target, 'create')
    }
  })
}

/** Owner, comment, settings and privileges of the dumped database, applied to the restored one in one transaction. */
export async function applyDatabaseStatements (target: Target, name: string, statements: string[]): Promise<void> {
  if (statements.length === 0) return
  await withTargetClient(adminTarget(target, name), async client => {
    try {
      await inTransaction(client, async () => { for (const s of statements) await client.query(s) })
    } catch (err) {
      throw sqlError(err, name, target, 'set the properties of')
    }
  })
}

/**
 * Puts the restored database in place under its name in one transaction (RENAME is transactional):
 * readers see the old database or the new one, never neither. The old one, when there is one, keeps
 * living under `old` until dropDatabase.
 */
export async function swapIn (target: Target, names: { database: string, scratch: string, old?: string }): Promise<void> {
  await withTargetClient(adminTarget(target, names.database), async client => {
    try {
      await inTransaction(client, async () => {
        if (names.old) await client.query(`ALTER DATABASE ${quoteIdent(names.database)} RENAME TO ${quoteIdent(names.old)}`)
        await client.query(`ALTER DATABASE ${quoteIdent(names.scratch)} RENAME TO ${quoteIdent(names.database)}`)
      })
    } catch (err) {
      throw sqlError(err, names.database, target, 'rename')
    }
  })
}

/**
 * Drops a database pgkeep made (a scratch database, or the replaced one after the swap), cutting off any
 * session still in it (WITH FORCE, PostgreSQL 13+). Returns false when there was none of that name.
 */
export async function dropDatabase (target: Target, name: string, opts: { oid?: number } = {}): Promise<boolean> {
  return await withTargetClient(adminTarget(target, name), async client => {
    try {
      const r = await client.query<{ oid: string, v: string }>("SELECT oid, current_setting('server_version_num') AS v FROM pg_database WHERE datname = $1", [name])
      const row = r.rows[0]
      // a name can be taken again by someone else: drop only the database this restore made
      if (!row || (opts.oid !== undefined && Number(row.oid) !== opts.oid)) return false
      // dropping a large database removes many files; pgkeep's own statement timeout must not cut that short
      await client.query('SET statement_timeout = 0')
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${Number(row.v) >= 130000 ? ' WITH (FORCE)' : ''}`)
      return true
    } catch (err) {
      throw sqlError(err, name, target, 'drop')
    }
  })
}

/** The name a database has now, by oid: how recovery tells whether a swap happened. */
export async function databaseNameOf (target: Target, oid: number, adminFor: string): Promise<string | undefined> {
  return await withTargetClient(adminTarget(target, adminFor), async client =>
    (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE oid = $1', [oid])).rows[0]?.datname)
}

async function inTransaction (client: pg.Client, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN')
  try {
    await fn()
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/**
 * After the client is killed its server backend may still be running the last statement:
 * cancel every backend carrying the job's application_name, wait for them to go, and terminate
 * any that outlive the grace period.
 */
export async function stopBackends (target: Target, restoreDb: string, appName: string, graceMs: number): Promise<void> {
  await withTargetClient(adminTarget(target, restoreDb), async client => {
    const others = 'FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()'
    await client.query(`SELECT pg_cancel_backend(pid) ${others}`, [appName])
    let deadline = Date.now() + graceMs
    let terminated = false
    for (;;) {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n ${others}`, [appName])
      if (Number(r.rows[0].n) === 0) return
      if (Date.now() >= deadline) {
        if (terminated) return
        await client.query(`SELECT pg_terminate_backend(pid) ${others}`, [appName])
        terminated = true
        deadline = Date.now() + 5000
      }
      // polling pg_stat_activity: there is no event for "that backend has gone"
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })
}
