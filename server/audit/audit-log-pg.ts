import type { AuditEntry, AuditPage } from '../../schemas/audit.ts'
import type { CatalogDb } from '../catalog/catalog-db.ts'
import { auditLine, tracked, type AuditStore } from './audit-log.ts'

/**
 * The audit log in the shared catalog (pgkeep.audit): the entries of every instance in one table, ordered by the
 * catalog's sequence (the order the appends reached it), paged newest first. Each append is one INSERT, durable
 * once it resolves.
 */
export class PgAuditLog implements AuditStore {
  readonly #pending = new Set<Promise<unknown>>()

  constructor (private readonly db: CatalogDb) {}

  async append (entry: Omit<AuditEntry, 'time'> & { time?: string }): Promise<void> {
    const line = auditLine(entry)
    await tracked(this.#pending, this.db.query('INSERT INTO pgkeep.audit (at, entry) VALUES ($1, $2)', [line.time, JSON.stringify(line)]))
  }

  async page (page = 1, pageSize = 50): Promise<AuditPage> {
    const [items, total] = await Promise.all([
      this.db.query<{ entry: AuditEntry }>('SELECT entry FROM pgkeep.audit ORDER BY seq DESC LIMIT $1 OFFSET $2', [pageSize, (page - 1) * pageSize]),
      this.db.query<{ n: string }>('SELECT count(*) AS n FROM pgkeep.audit'),
    ])
    return { items: items.rows.map(r => r.entry), total: Number(total.rows[0].n), page, pageSize }
  }

  async flush (): Promise<void> {
    await Promise.allSettled([...this.#pending])
  }

  /** The catalog connection is the process's, closed by whoever opened it. */
  async close (): Promise<void> {
    await this.flush()
  }
}
