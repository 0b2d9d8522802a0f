import type { RestoreState } from '../../../schemas/restore.ts'
import type { Target } from '../../config.ts'
import { pidStillOwns } from '../store/file-lock.ts'
import type { RestoreRecord, RestoreRecords } from '../store/restore-records.ts'
import { databaseNameOf, dropDatabase } from './database.ts'

export const RESTORE_INTERRUPTED_MESSAGE = 'pgkeep stopped while this restore was running; its scratch database was dropped and the target left as it was'

/** The process that recorded the restore still runs it (not a later process that got the same pid). */
function ownerAlive (r: RestoreRecord): boolean {
  return pidStillOwns(r.ownerPid, Date.parse(r.startedAt))
}

interface Outcome { record: RestoreRecord, warnings: string[] }

/**
 * What a dead restore left on its server, put right: its scratch database dropped (identified by name and,
 * once created, by oid), and when the swap had already happened (the scratch oid now carries the target's
 * name) the replaced database dropped and the restore counted as completed. A target that cannot be reached
 * keeps the names in `leftovers` for the next start.
 */
async function settle (r: RestoreRecord, target: Target | undefined): Promise<Outcome> {
  const endedAt = new Date().toISOString()
  const running = r.status === 'running'
  const interrupted: RestoreRecord = running
    ? { ...r, status: 'failed', error: { code: 'INTERRUPTED', message: RESTORE_INTERRUPTED_MESSAGE }, endedAt }
    : { ...r }
  if (!target) {
    return { record: { ...interrupted, leftovers: undefined }, warnings: [`restore ${r.id}: target "${r.target}" is no longer configured; check it for databases named ${[r.scratch, r.old, ...(r.leftovers ?? [])].filter(Boolean).join(', ')}`] }
  }
  try {
    let outcome = interrupted
    const drop = new Set(r.leftovers ?? [])
    if (running) {
      const scratchNow = r.scratchOid === undefined ? undefined : await databaseNameOf(target, r.scratchOid, r.database)
      if (scratchNow !== undefined && scratchNow === r.database) {
        // the swap committed: the restored database is in place; only the replaced one may be left
        outcome = { ...r, status: 'completed', endedAt }
        if (r.old) drop.add(r.old)
      } else if (r.scratch) {
        drop.add(r.scratch)
      }
    }
    for (const name of drop) {
      // the old name holds the replaced database's oid; the scratch name the scratch's: never drop anything else
      const oid = name === r.old ? r.existingOid : name === r.scratch ? r.scratchOid : undefined
      await dropDatabase(target, name, { oid })
    }
    return { record: { ...outcome, leftovers: undefined }, warnings: [] }
  } catch (err) {
    const names = [...new Set([...(r.leftovers ?? []), ...(running && r.scratch ? [r.scratch] : [])])]
    return { record: { ...interrupted, leftovers: names }, warnings: [`restore ${r.id}: could not clean up on target "${r.target}" (${(err as Error).message}); tried again at the next start`] }
  }
}

/**
 * Start-up repair for restores: a restore whose process is gone is marked failed (INTERRUPTED), or completed
 * when it died after its swap, and the databases it made are dropped. Returns the states to show for them.
 */
export async function recoverRestores (records: RestoreRecords, targets: Record<string, Target>, warn: (m: string) => void): Promise<RestoreState[]> {
  const dead = (await records.all()).filter(r => (r.status === 'running' || (r.leftovers?.length ?? 0) > 0) && !ownerAlive(r))
  if (dead.length === 0) return []
  const settled: RestoreRecord[] = []
  for (const r of dead) {
    const { record, warnings } = await settle(r, targets[r.target])
    warnings.forEach(warn)
    settled.push(record)
  }
  await records.update(all => {
    for (const r of settled) {
      const current = all.get(r.id)
      // another process may have settled it meanwhile; only a record still as we read it is replaced
      if (current && current.status === dead.find(d => d.id === r.id)?.status) all.set(r.id, r)
    }
  })
  return settled.filter((r, i) => dead[i].status === 'running').map(r => ({
    restoreId: r.id, backupId: r.backupId, database: r.database, mode: r.mode, status: r.status,
    ...(r.error ? { error: r.error } : {}), at: r.endedAt ?? new Date().toISOString(),
  }))
}
