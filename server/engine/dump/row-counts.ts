import type pg from 'pg'
import type { TableRowCount } from '../../../schemas/backup.ts'
import type { Target } from '../../config.ts'
import { connectTarget } from '../pg/connection.ts'
import { qualifiedName } from '../pg/table-name.ts'

export interface SnapshotCount {
  /** pg_export_snapshot()'s id, for pg_dump --snapshot */
  snapshot: string
  /** every table's rows as seen by that snapshot; rejects when a count failed */
  counts: Promise<TableRowCount[]>
  /** ends the exporting transaction: only once pg_dump has exited (it imports the snapshot when it starts) */
  close: () => Promise<void>
}

/**
 * countRows: a REPEATABLE READ transaction exports its snapshot, pg_dump runs with --snapshot on it, and the
 * same transaction counts every table pg_dump copies. Both read the same rows, so a drill can compare exactly.
 * The counting session carries the dump's application_name, so a cancel stops it with pg_dump's backend.
 * The cost is a second full scan of every table (measured in bench/row-counts.ts), at the same time as the dump.
 * ONLY: pg_dump copies leaf partitions, each once, and the inspector lists those.
 */
export async function startSnapshotCount (target: Target, tables: ReadonlyArray<{ schema: string, name: string }>, appName: string): Promise<SnapshotCount> {
  const client: pg.Client = await connectTarget(target)
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await client.query('ROLLBACK').catch(() => {})
    await client.end().catch(() => {})
  }
  try {
    await client.query(`SET application_name = ${quoteLiteral(appName)}`)
    // a large table takes as long to count as to dump; the dump's own bounds (cancel, maxDuration) apply instead
    await client.query('SET statement_timeout = 0')
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const { rows } = await client.query<{ id: string }>('SELECT pg_catalog.pg_export_snapshot() AS id')
    const counts = (async () => {
      const out: TableRowCount[] = []
      for (const t of tables) {
        const name = qualifiedName(t.schema, t.name)
        const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${name}`)
        out.push({ table: name, rows: Number(r.rows[0].n) })
      }
      return out
    })()
    counts.catch(() => {})
    return { snapshot: rows[0].id, counts, close }
  } catch (err) {
    await close()
    throw err
  }
}

const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`
