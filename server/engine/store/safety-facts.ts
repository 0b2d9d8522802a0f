import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError } from '../../errors.ts'
import type { Storage } from '../storage/storage.ts'
import { readManifest, writeManifest } from './manifest.ts'

/**
 * What is learnt about a backup after its dump and decides whether it may be deleted or trusted: its pin and its
 * last verification. They are written to the backup's manifest as well as to registry.json (manifest first, both
 * under the registry lock), so a catalog rebuilt from the manifests loses none of them: a lost pin would let
 * retention delete the backup. A new fact of this kind (a note) joins this list; the last drill's result is one.
 */
export type SafetyFacts = Pick<Backup, 'pinned' | 'verification' | 'drill'>

function verifiedMs (b: Backup): number {
  const ms = b.verification === undefined ? NaN : Date.parse(b.verification.at)
  return Number.isNaN(ms) ? -Infinity : ms
}

function drilledMs (b: Backup): number {
  const ms = b.drill === undefined ? NaN : Date.parse(b.drill.at)
  return Number.isNaN(ms) ? -Infinity : ms
}

/**
 * The facts to keep when registry.json and a manifest disagree (a crash between the two writes, or a manifest
 * written before manifests held these facts): a pin recorded in either one holds, so no order of writes or crash
 * can lose one (an unpin interrupted half-way is simply still pinned); the newer verification wins.
 */
export function mergeSafetyFacts (fromRegistry: Backup, fromManifest: Backup): SafetyFacts {
  const newer = verifiedMs(fromRegistry) >= verifiedMs(fromManifest) ? fromRegistry : fromManifest
  const drilled = drilledMs(fromRegistry) >= drilledMs(fromManifest) ? fromRegistry : fromManifest
  return {
    pinned: fromRegistry.pinned || fromManifest.pinned,
    ...(newer.verification ? { verification: newer.verification } : {}),
    ...(drilled.drill ? { drill: drilled.drill } : {}),
  }
}

/** Whether the manifest's record is missing a fact the registry knows (so the manifest should be rewritten). */
export function manifestLags (fromManifest: Backup, current: Backup): boolean {
  return fromManifest.pinned !== current.pinned ||
    JSON.stringify(fromManifest.verification) !== JSON.stringify(current.verification) ||
    JSON.stringify(fromManifest.drill) !== JSON.stringify(current.drill)
}

/**
 * Rewrites a completed backup's manifest with its current record (files unchanged), atomically. Returns false,
 * writing nothing, when the manifest cannot be read: a damaged manifest is what validation reports, and that
 * report must still reach the registry. Any other failure (disk full) throws, so the caller records nothing.
 */
export async function recordInManifest (storage: Storage, backup: Backup): Promise<boolean> {
  let files
  try {
    files = (await readManifest(storage, backup.name)).files
  } catch (err) {
    if (err instanceof IntegrityError) return false
    throw err
  }
  const record: Backup = { ...backup }
  delete record.ownerPid
  await writeManifest(storage, record, files)
  return true
}
