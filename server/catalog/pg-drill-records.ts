import { pruneEnded, type DrillRecord, type DrillStore } from '../engine/store/drill-records.ts'
import type { CatalogDb } from './catalog-db.ts'

/** the pool or one transaction's connection */
type Sql = Pick<CatalogDb, 'query'>

// every writer of pgkeep.drills takes this transaction-level advisory lock, as the file store takes its lock file
const WRITE_LOCK_KEY = 'pgkeep.drills'

/**
 * The drill history in the shared catalog (pgkeep.drills, migration 0003). Drills are few (the newest 500 ended
 * ones and the running ones), so reads go to the catalog each time and an update re-reads them all under the
 * lock, as the file store does; it writes only the rows fn changed.
 */
export class PgDrillRecords implements DrillStore {
  readonly #db: CatalogDb

  constructor (db: CatalogDb) {
    this.#db = db
  }

  async all (): Promise<DrillRecord[]> {
    return await readAll(this.#db)
  }

  async get (id: string): Promise<DrillRecord | undefined> {
    const { rows } = await this.#db.query<{ record: DrillRecord }>('SELECT record FROM pgkeep.drills WHERE id = $1', [id])
    return rows[0]?.record
  }

  async update (fn: (records: Map<string, DrillRecord>) => void): Promise<void> {
    await this.#db.transaction(async client => {
      await lockDrills(client)
      const before = new Map((await readAll(client)).map(r => [r.id, r]))
      const records = new Map(before)
      fn(records)
      pruneEnded(records)
      const gone = [...before.keys()].filter(id => !records.has(id))
      const changed = [...records.values()].filter(r => r !== before.get(r.id))
      if (gone.length > 0) await client.query('DELETE FROM pgkeep.drills WHERE id = ANY($1::text[])', [gone])
      if (changed.length > 0) await upsertDrills(client, changed)
    })
  }

  async put (record: DrillRecord): Promise<void> {
    await this.update(records => { records.set(record.id, record) })
  }
}

/** Taken by every writer of pgkeep.drills, for the rest of its transaction. */
export async function lockDrills (client: Sql): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [WRITE_LOCK_KEY])
}

async function readAll (q: Sql): Promise<DrillRecord[]> {
  const { rows } = await q.query<{ record: DrillRecord }>('SELECT record FROM pgkeep.drills ORDER BY started_at DESC, id DESC')
  return rows.map(r => r.record)
}

/** Inserts or replaces drill records; conflictAction 'nothing' keeps what is there (the import). Returns how many rows were written. */
export async function upsertDrills (q: Sql, records: DrillRecord[], conflictAction: 'update' | 'nothing' = 'update'): Promise<number> {
  const onConflict = conflictAction === 'update'
    ? `DO UPDATE SET backup_id = excluded.backup_id, target = excluded.target, status = excluded.status,
        started_at = excluded.started_at, record = excluded.record`
    : 'DO NOTHING'
  const { rowCount } = await q.query(`
    INSERT INTO pgkeep.drills (id, backup_id, target, status, started_at, record)
    SELECT r->>'id', r->>'backupId', r->>'target', r->>'status', (r->>'startedAt')::timestamptz, r
    FROM pg_catalog.jsonb_array_elements($1::jsonb) AS r
    ON CONFLICT (id) ${onConflict}`, [JSON.stringify(records)])
  return rowCount ?? 0
}
