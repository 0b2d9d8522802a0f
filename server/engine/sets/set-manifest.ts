import type { BackupSet } from '../../../schemas/sets.ts'
import type { Storage } from '../storage/storage.ts'

export const SET_MANIFEST_SUFFIX = '.set.json'

export function setManifestKey (setName: string): string {
  return `${setName}${SET_MANIFEST_SUFFIX}`
}

/**
 * `<set name>.set.json` beside the members: which backups form the set, each with its database, status and
 * checksum, so a person with only the bucket (or directory) knows what to restore and in what order. Written
 * when the set is planned and again when it ends. The catalog does not need it: every member's own manifest
 * names its set, which is what a reindex rebuilds sets from.
 */
export async function writeSetManifest (storage: Storage, set: BackupSet): Promise<void> {
  const doc = {
    setManifestVersion: 1,
    set: { id: set.id, name: set.name, target: set.target, status: set.status, createdAt: set.createdAt, createdBy: set.createdBy, ...(set.finishedAt ? { finishedAt: set.finishedAt } : {}) },
    restoreOrder: 'globals first (psql -f), then each database (pg_restore --create -d postgres)',
    members: set.members.map(m => ({
      id: m.id,
      name: m.name,
      kind: m.kind ?? 'database',
      ...(m.kind === 'globals' ? {} : { database: m.database }),
      format: m.format,
      compression: m.compression,
      status: m.status,
      ...(m.sizeBytes !== undefined ? { sizeBytes: m.sizeBytes } : {}),
      ...(m.sha256 !== undefined ? { sha256: m.sha256 } : {}),
      ...(m.error !== undefined ? { error: m.error } : {}),
    })),
  }
  await storage.writeText(setManifestKey(set.name), `${JSON.stringify(doc, null, 2)}\n`)
}
