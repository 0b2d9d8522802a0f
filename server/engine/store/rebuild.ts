import type { Backup } from '../../../schemas/backup.ts'
import { scanManifests } from './manifest.ts'
import type { Storage } from '../storage/storage.ts'
import { manifestLags, mergeSafetyFacts, recordInManifest } from './safety-facts.ts'

/**
 * Manifests win for what the file is; pin and verification are merged (safety-facts.ts: a pin in either holds,
 * the newer verification wins). A completed record without a manifest has lost its self-description
 * (usually: deleted by hand) and is dropped; records of jobs in flight or that failed have no manifest and are kept.
 */
export function mergeWithManifests (existing: Backup[], fromManifests: Backup[]): Backup[] {
  const current = new Map(existing.map(b => [b.id, b]))
  const out = new Map<string, Backup>()
  for (const m of fromManifests) {
    const e = current.get(m.id)
    if (e === undefined) out.set(m.id, m)
    else if (e.status !== 'completed') out.set(m.id, e)
    else {
      const merged: Backup = { ...m, ...mergeSafetyFacts(e, m) }
      if (merged.verification === undefined) delete merged.verification
      out.set(m.id, merged)
    }
  }
  for (const e of existing) if (!out.has(e.id) && e.status !== 'completed') out.set(e.id, e)
  return [...out.values()]
}

/** The backups the manifests describe, merged with the records kept so far; the scan's warnings go to onWarning. */
export async function rebuildRecords (manifests: Storage, existing: Backup[], opts: { isBackupDir: boolean, onWarning: (m: string) => void, catalogName: string }): Promise<{ merged: Backup[], fromManifests: Backup[], warnings: string[] }> {
  const { backups, warnings } = await scanManifests(manifests, { isBackupDir: opts.isBackupDir })
  for (const w of warnings) opts.onWarning(w)
  const merged = mergeWithManifests(existing, backups)
  await catchUpManifests(manifests, merged, backups, opts)
  return { merged, fromManifests: backups, warnings }
}

/**
 * Under the writers' lock, before the catalog write: manifests that lack a pin or verification the catalog held
 * (written before manifests kept them, or by a writer that crashed between the two) get them, so the next
 * rebuild has them too.
 */
async function catchUpManifests (manifests: Storage, merged: Backup[], fromManifests: Backup[], opts: { onWarning: (m: string) => void, catalogName: string }): Promise<void> {
  const described = new Map(fromManifests.map(b => [b.id, b]))
  for (const b of merged) {
    const m = described.get(b.id)
    if (b.status !== 'completed' || m === undefined || !manifestLags(m, b)) continue
    if (!await recordInManifest(manifests, b)) opts.onWarning(`manifest of ${b.name} could not be read; its pin and verification are only in ${opts.catalogName}`)
  }
}
