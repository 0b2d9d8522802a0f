import type { CatalogDb } from './catalog-db.ts'

export interface ImportResult {
  /** records written into the catalog (with dryRun: that would be) */
  imported: number
  /** records the catalog already holds (same id, or a live backup of the same name): left as they are */
  skipped: number
}

/**
 * One kind of record `pgkeep catalog import` moves from a file catalog (backupDir) into PostgreSQL. Each run is
 * idempotent: what the catalog already holds is skipped, never overwritten (the catalog may have moved on since).
 */
export interface CatalogImporter {
  kind: string
  run (backupDir: string, db: CatalogDb, dryRun: boolean): Promise<ImportResult>
}
