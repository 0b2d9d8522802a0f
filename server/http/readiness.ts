import type { ReadinessCheck } from '../../schemas/health.ts'
import type { Config } from '../config.ts'
import { checkHealth, type FreeSpace } from '../engine/health.ts'

export interface Readiness { ready: boolean, checks: ReadinessCheck[] }

function freeSpaceMessage (f: FreeSpace): string {
  if ('error' in f) return f.error.message
  return f.ok ? `${f.freeBytes} bytes free` : `only ${f.freeBytes} bytes free on the backups volume; at least ${f.minFreeBytes} required`
}

/**
 * Can this instance take a backup right now, in the ready route's words: one named check per probe, so an
 * operator reading `reasons` knows what to fix.
 */
export async function checkReadiness (config: Config): Promise<Readiness> {
  const { tools: [pgDump], targets, backupDir: { writable, freeSpace } } = await checkHealth(config)
  const checks: ReadinessCheck[] = [
    pgDump.ok ? { name: 'pg_dump', ok: true, message: `pg_dump ${pgDump.version}` } : { name: 'pg_dump', ok: false, message: pgDump.error.message },
    ...targets.map(t => t.ok
      ? { name: `target:${t.name}`, ok: true, message: `PostgreSQL ${t.server.version}` }
      : { name: `target:${t.name}`, ok: false, message: t.error.message }),
    writable.ok ? { name: 'backupDir:writable', ok: true } : { name: 'backupDir:writable', ok: false, message: writable.error.message },
    { name: 'backupDir:freeSpace', ok: freeSpace.ok, message: freeSpaceMessage(freeSpace) },
  ]
  return { ready: checks.every(c => c.ok), checks }
}
