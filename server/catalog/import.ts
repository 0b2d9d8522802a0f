import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Backup } from '../../schemas/backup.ts'
import { PgkeepError } from '../errors.ts'
import { DrillRecords } from '../engine/store/drill-records.ts'
import { parseRegistry, REGISTRY_FILE } from '../engine/store/file-registry.ts'
import type { CatalogDb } from './catalog-db.ts'
import { AUTH_IMPORTERS } from './import-auth.ts'
import type { CatalogImporter, ImportResult } from './importer.ts'
import { lockDrills, upsertDrills } from './pg-drill-records.ts'
import { BACKUPS_CHANNEL, lockBackups, nextChangeSeq, upsertRows } from './pg-registry.ts'

const IMPORT_BATCH = 500

/** registry.json as it is; a missing one is nothing to import, a corrupt one is for `pgkeep reindex` to repair first. */
async function readRegistryFile (backupDir: string): Promise<Backup[]> {
  const path = join(backupDir, REGISTRY_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const parsed = parseRegistry(text, false)
  if (!('backups' in parsed)) {
    throw new PgkeepError('INVALID_STATE', `${path} is damaged (${parsed.reason}); run \`pgkeep reindex\` without PGKEEP_CATALOG_URL first, then import`)
  }
  return parsed.backups
}

export const backupsImporter: CatalogImporter = {
  kind: 'backups',
  async run (backupDir, db, dryRun) {
    const records = await readRegistryFile(backupDir)
    if (records.length === 0) return { imported: 0, skipped: 0 }
    return await db.transaction(async client => {
      await lockBackups(client)
      const { rows } = await client.query<{ id: string, name: string, live: boolean }>(
        'SELECT id, name, deleted_at IS NULL AS live FROM pgkeep.backups')
      const ids = new Set(rows.map(r => r.id))
      const names = new Set(rows.filter(r => r.live).map(r => r.name))
      const fresh = records.filter(b => !ids.has(b.id) && !names.has(b.name))
      if (!dryRun && fresh.length > 0) {
        const seq = await nextChangeSeq(client)
        for (let i = 0; i < fresh.length; i += IMPORT_BATCH) await upsertRows(client, seq, fresh.slice(i, i + IMPORT_BATCH))
        await client.query('SELECT pg_catalog.pg_notify($1, $2)', [BACKUPS_CHANNEL, String(seq)])
      }
      return { imported: fresh.length, skipped: records.length - fresh.length }
    })
  },
}

export const drillsImporter: CatalogImporter = {
  kind: 'drills',
  async run (backupDir, db, dryRun) {
    const records = await new DrillRecords(backupDir).all()
    if (records.length === 0) return { imported: 0, skipped: 0 }
    return await db.transaction(async client => {
      await lockDrills(client)
      const { rows } = await client.query<{ id: string }>('SELECT id FROM pgkeep.drills WHERE id = ANY($1::text[])', [records.map(r => r.id)])
      const there = new Set(rows.map(r => r.id))
      const fresh = records.filter(r => !there.has(r.id))
      if (!dryRun && fresh.length > 0) await upsertDrills(client, fresh, 'nothing')
      return { imported: fresh.length, skipped: records.length - fresh.length }
    })
  },
}

/** Every kind `pgkeep catalog import` moves, in order. */
export const IMPORTERS: readonly CatalogImporter[] = [
  backupsImporter,
  drillsImporter,
  ...AUTH_IMPORTERS,
]

/** Runs each importer in turn; one that fails stops the rest (what was imported before it stays: a rerun skips it). */
export async function importFileCatalog (backupDir: string, db: CatalogDb, opts: { dryRun: boolean, importers?: readonly CatalogImporter[] }): Promise<Array<{ kind: string } & ImportResult>> {
  const results: Array<{ kind: string } & ImportResult> = []
  for (const importer of opts.importers ?? IMPORTERS) {
    results.push({ kind: importer.kind, ...await importer.run(backupDir, db, opts.dryRun) })
  }
  return results
}
