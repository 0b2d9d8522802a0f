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
  const { tools: [pgDump], targets, backupDir: { writable, freeSpace }, storages } = await checkHealth(config)
  const checks: ReadinessCheck[] = [
    pgDump.ok ? { name: 'pg_dump', ok: true, message: `pg_dump ${pgDump.version}` } : { name: 'pg_dump', ok: false, message: pgDump.error.message },
    ...targets.map(t => t.ok
      ? { name: `target:${t.name}`, ok: true, message: `PostgreSQL ${t.server.version}` }
      : { name: `target:${t.name}`, ok: false, message: t.error.message }),
    writable.ok ? { name: 'backupDir:writable', ok: true } : { name: 'backupDir:writable', ok: false, message: writable.error.message },
    { name: 'backupDir:freeSpace', ok: freeSpace.ok, message: freeSpaceMessage(freeSpace) },
    ...storages.map(s => s.ok
      ? { name: `storage:${s.url}`, ok: true, message: `${s.role}: reachable, credentials valid, writable` }
      : { name: `storage:${s.url}`, ok: false, message: `${s.role}: ${s.error.message} (${s.error.code})` }),
  ]
  return { ready: checks.every(c => c.ok), checks }
}

/**
 * Readiness probed at most once per `maxAgeMs` for callers who do not need it fresh (the public probe): a
 * probe opens a connection to every target, and an unauthenticated caller must not be able to make us do that
 * per request. Callers arriving while a probe runs share it.
 */
export class ReadinessCache {
  readonly #config: Config
  readonly #maxAgeMs: number
  #last?: { at: number, result: Readiness }
  #running?: Promise<Readiness>

  constructor (config: Config, maxAgeMs: number) {
    this.#config = config
    this.#maxAgeMs = maxAgeMs
  }

  /** A fresh probe (a logged-in caller asking why), which also refreshes the cached one. */
  async probe (): Promise<Readiness> {
    this.#running ??= checkReadiness(this.#config).then(result => {
      this.#last = { at: Date.now(), result }
      return result
    }).finally(() => { this.#running = undefined })
    return await this.#running
  }

  /** The last result if recent enough, else a probe. */
  async recent (): Promise<Readiness> {
    if (this.#last && Date.now() - this.#last.at < this.#maxAgeMs) return this.#last.result
    return await this.probe()
  }
}
