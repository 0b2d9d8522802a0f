import type { Target } from '../../config.ts'
import { InvalidInputError } from '../../errors.ts'
import { withTargetClient } from '../pg/connection.ts'
import { parseSchemaPattern } from '../pg/name-pattern.ts'

export const DEFAULT_MAINTENANCE_DATABASE = 'postgres'

export interface SetDatabase {
  name: string
  /** pg_database_size when planned: the database's weight in the set's progress */
  sizeBytes: number
}

/** Which databases a set takes: every one ('*', minus the excluded) or the named ones. */
export interface DatabaseSelection {
  databases: '*' | string[]
  excludeDatabases?: string[]
}

/** The target, connected to its maintenance database (where sets look around and pg_dumpall starts). */
export function maintenanceTarget (target: Target): Target {
  return { ...target, database: target.maintenanceDatabase ?? DEFAULT_MAINTENANCE_DATABASE }
}

/**
 * excludeDatabases are psql/pg_dump patterns (`*`, `?`, unquoted letters fold to lower case, "quoted" keeps
 * case): the same parser as -n patterns (pg/name-pattern.ts), matched here rather than by the server.
 */
function excluder (patterns: string[]): (db: string) => boolean {
  const res = patterns.map(p => new RegExp(parseSchemaPattern(p, '').name))
  return db => res.some(re => re.test(db))
}

/**
 * `postgres` is created by initdb for tools to connect to and usually holds nothing; an admin expects it in a
 * whole-server backup only when someone put objects there (tables, functions, types, extensions beyond plpgsql)
 * or named it. Its CREATE DATABASE would collide with the one every server already has.
 */
const USER_OBJECTS_SQL = `
  SELECT (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%')
       + (SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
       + (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public') AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%')
       + (SELECT count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql') AS n`

async function holdsUserObjects (target: Target, db: string): Promise<boolean> {
  return await withTargetClient({ ...target, database: db }, async c => Number((await c.query(USER_OBJECTS_SQL)).rows[0].n) > 0)
}

/**
 * The databases of a set, asked of the server at the time the set is planned, in name order. Templates and
 * databases that refuse connections are never taken; `postgres` is taken when named or when it holds objects.
 * A named database the server does not have is an INVALID_INPUT naming it.
 */
export async function discoverDatabases (target: Target, selection: DatabaseSelection): Promise<SetDatabase[]> {
  const maintenance = maintenanceTarget(target)
  const rows = await withTargetClient(maintenance, async c => (await c.query<{ datname: string, size: string }>(
    `SELECT datname, pg_catalog.pg_database_size(oid)::text AS size FROM pg_catalog.pg_database
      WHERE NOT datistemplate AND datallowconn ORDER BY datname COLLATE "C"`)).rows)
  const all = rows.map(r => ({ name: r.datname, sizeBytes: Number(r.size) }))
  if (selection.databases !== '*') {
    const missing = selection.databases.filter(d => !all.some(a => a.name === d))
    if (missing.length > 0) throw new InvalidInputError(`databases: the server of target ${target.name} has no database ${missing.map(d => JSON.stringify(d)).join(', ')} (or it is a template)`, 'databases')
    return selection.databases.map(d => all.find(a => a.name === d) as SetDatabase)
  }
  const excluded = excluder(selection.excludeDatabases ?? [])
  const picked: SetDatabase[] = []
  for (const db of all) {
    if (excluded(db.name)) continue
    if (db.name === DEFAULT_MAINTENANCE_DATABASE && !await holdsUserObjects(target, db.name)) continue
    picked.push(db)
  }
  return picked
}
