import { PgkeepError } from '../errors.ts'
import type pg from 'pg'
import { MIGRATIONS, type Migration } from './migrations/index.ts'

// catalog-db.ts's Queryable, said again here: importing it from there would make the two modules a cycle
type Queryable = Pick<pg.PoolClient, 'query'>

// one key for every pgkeep that opens the catalog: instances starting together migrate one after the other
const MIGRATE_LOCK_KEY = 'pgkeep.migrate'

/**
 * Brings the catalog's `pgkeep` schema up to this pgkeep's newest migration, inside the caller's transaction,
 * under a transaction-level advisory lock. Each migration runs once, in order, and is recorded in
 * pgkeep.schema_version. A catalog already migrated past what this pgkeep knows is refused: an older pgkeep
 * must not write into tables whose rules it does not know.
 */
export async function migrate (client: Queryable, migrations: readonly Migration[] = MIGRATIONS): Promise<{ applied: number[] }> {
  checkOrder(migrations)
  await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [MIGRATE_LOCK_KEY])
  await client.query('CREATE SCHEMA IF NOT EXISTS pgkeep')
  await client.query(`CREATE TABLE IF NOT EXISTS pgkeep.schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now())`)
  const { rows } = await client.query<{ version: number }>('SELECT version FROM pgkeep.schema_version ORDER BY version')
  const done = new Set(rows.map(r => r.version))
  const newest = migrations.at(-1)?.version ?? 0
  const ahead = rows.map(r => r.version).filter(v => v > newest)
  if (ahead.length > 0) {
    throw new PgkeepError('INVALID_STATE',
      `the catalog is at schema version ${Math.max(...ahead)}, newer than this pgkeep knows (${newest}); upgrade pgkeep on this host`)
  }
  const applied: number[] = []
  for (const m of migrations) {
    if (done.has(m.version)) continue
    await client.query(m.sql)
    await client.query('INSERT INTO pgkeep.schema_version (version, name) VALUES ($1, $2)', [m.version, m.name])
    applied.push(m.version)
  }
  return { applied }
}

function checkOrder (migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`)
  })
}
