import type { InstanceStatus, ReadinessCheck } from '../../schemas/health.ts'
import type { Config } from '../config.ts'
import { checkHealth, type FreeSpace } from '../engine/health.ts'
import { instanceStatusWithin, type InstanceStatusSource } from './instance-status.ts'

export interface Readiness { ready: boolean, checks: ReadinessCheck[], instance?: InstanceStatus }

function freeSpaceMessage (f: FreeSpace): string {
  if ('error' in f) return f.error.message
  return f.ok ? `${f.freeBytes} bytes free` : `only ${f.freeBytes} bytes free on the backups volume; at least ${f.minFreeBytes} required`
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/**
 * With a shared catalog, the `catalog` check: it answered (and with what), or why not. An instance that cannot
 * reach its catalog can neither queue nor claim a job, so it is not ready. No catalog: no check, no instance.
 */
async function checkCatalog (instanceStatus: InstanceStatusSource): Promise<{ check?: ReadinessCheck, instance?: InstanceStatus }> {
  try {
    const instance = await instanceStatusWithin(instanceStatus)
    if (instance === undefined) return {}
    const message = `instance ${instance.id}, ${plural(instance.liveInstances, 'live instance')}`
    return { check: { name: 'catalog', ok: true, message }, instance }
  } catch (err) {
    return { check: { name: 'catalog', ok: false, message: err instanceof Error ? err.message : String(err) } }
  }
}

/**
 * Can this instance take a backup right now, in the ready route's words: one named check per probe, so an
 * operator reading `reasons` knows what to fix.
 */
export async function checkReadiness (config: Config, instanceStatus: InstanceStatusSource = async () => undefined): Promise<Readiness> {
  const [{ tools: [pgDump], targets, backupDir: { writable, freeSpace }, storages }, catalog] = await Promise.all([checkHealth(config), checkCatalog(instanceStatus)])
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
    ...(catalog.check ? [catalog.check] : []),
  ]
  return { ready: checks.every(c => c.ok), checks, ...(catalog.instance ? { instance: catalog.instance } : {}) }
}

/**
 * Readiness probed at most once per `maxAgeMs` for callers who do not need it fresh (the public probe): a
 * probe opens a connection to every target, and an unauthenticated caller must not be able to make us do that
 * per request. Callers arriving while a probe runs share it.
 */
export class ReadinessCache {
  readonly #config: Config
  readonly #maxAgeMs: number
  readonly #instanceStatus?: InstanceStatusSource
  #last?: { at: number, result: Readiness }
  #running?: Promise<Readiness>

  constructor (config: Config, maxAgeMs: number, instanceStatus?: InstanceStatusSource) {
    this.#config = config
    this.#maxAgeMs = maxAgeMs
    this.#instanceStatus = instanceStatus
  }

  /** A fresh probe (a logged-in caller asking why), which also refreshes the cached one. */
  async probe (): Promise<Readiness> {
    this.#running ??= checkReadiness(this.#config, this.#instanceStatus).then(result => {
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
