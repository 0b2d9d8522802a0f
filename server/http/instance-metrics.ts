import { Gauge, type Registry } from 'prom-client'
import type { InstanceStatus } from '../../schemas/health.ts'
import { instanceStatusWithin, type InstanceStatusSource } from './instance-status.ts'

/**
 * The series of an instance sharing a catalog with others (registered only with a catalog: a lone pgkeep has no
 * instances to tell apart, and a gauge without labels would read 0 rather than be absent):
 * - `pgkeep_instance_info{instance_id}` 1: which instance this scrape reached. The label is `instance_id`, not
 *   `instance`: Prometheus gives every scraped series `instance` (the target's host:port) and would rename ours
 *   to `exported_instance`.
 * - `pgkeep_instance_leases`: jobs this instance holds a lease on (runs) now.
 * - `pgkeep_queue_jobs{state="queued"|"running"}`: the queue all instances share, the same from every instance.
 * - `pgkeep_live_instances`: instances that heartbeated within their lease.
 * - `pgkeep_catalog_up`: 1 when the catalog answered this scrape; 0 when it failed or was too slow, and then the
 *   four above have no sample (unknown, not zero) while every other series is still served.
 */
export function registerInstanceMetrics (registry: Registry, source: InstanceStatusSource): void {
  // prom-client collects every gauge of a scrape at once: they share one catalog query
  // null: the catalog failed to answer
  let asking: Promise<InstanceStatus | undefined | null> | undefined
  const status = async (): Promise<InstanceStatus | undefined | null> => {
    asking ??= instanceStatusWithin(source).catch(() => null).finally(() => { asking = undefined })
    return await asking
  }
  const registers = [registry]
  new Gauge({
    name: 'pgkeep_catalog_up', help: 'Whether the shared catalog answered this scrape (1) or not (0)', registers,
    async collect () { this.set(await status() === null ? 0 : 1) },
  })
  new Gauge({
    name: 'pgkeep_instance_info', help: 'This pgkeep instance (its id in the shared catalog)', labelNames: ['instance_id'], registers,
    async collect () {
      const s = await status()
      this.reset()
      if (s) this.set({ instance_id: s.id }, 1)
    },
  })
  new Gauge({
    name: 'pgkeep_instance_leases', help: 'Jobs this instance holds a lease on (is running)', registers,
    async collect () {
      const s = await status()
      if (s) this.set(s.leases)
      else this.remove()
    },
  })
  new Gauge({
    name: 'pgkeep_queue_jobs', help: 'Jobs in the queue all instances share, by state', labelNames: ['state'], registers,
    async collect () {
      const s = await status()
      this.reset()
      if (s) for (const state of ['queued', 'running'] as const) this.set({ state }, s.queue[state])
    },
  })
  new Gauge({
    name: 'pgkeep_live_instances', help: 'pgkeep instances that heartbeated within their lease', registers,
    async collect () {
      const s = await status()
      if (s) this.set(s.liveInstances)
      else this.remove()
    },
  })
}
