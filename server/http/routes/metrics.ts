import { statfs } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Backup, BackupStatus } from '../../../schemas/backup.ts'
import type { BackupService } from '../../engine/backup-service.ts'
import type { Drill } from '../../../schemas/drill.ts'
import { registerInstanceMetrics } from '../instance-metrics.ts'

const STATUSES: BackupStatus[] = ['queued', 'running', 'verifying', 'completed', 'failed', 'cancelled']

function allBackups (service: BackupService): Backup[] {
  const out: Backup[] = []
  for (let page = 1; ; page++) {
    const r = service.list({ page, pageSize: 500 })
    out.push(...r.items)
    if (out.length >= r.total || r.items.length === 0) return out
  }
}

function newestCompletedByTarget (backups: Backup[]): Map<string, Backup> {
  const newest = new Map<string, Backup>()
  for (const b of backups) {
    if (b.status !== 'completed') continue
    const cur = newest.get(b.target)
    if (!cur || (b.finishedAt ?? b.createdAt) > (cur.finishedAt ?? cur.createdAt)) newest.set(b.target, b)
  }
  return newest
}

/** Newest first in, per target the newest drill that ended (passed only, or passed or failed). */
function newestDrillByTarget (drills: Drill[], passedOnly: boolean): Map<string, Drill> {
  const newest = new Map<string, Drill>()
  for (const d of drills) {
    if (d.status === 'running' || d.status === 'cancelled' || (passedOnly && d.status !== 'passed')) continue
    if (!newest.has(d.target)) newest.set(d.target, d)
  }
  return newest
}

/**
 * The newest drills, or none when they cannot be read: with a shared catalog they are read from it, and a catalog
 * out of reach must leave these series without a sample, not fail the scrape (and every other series with it).
 */
async function recentDrills (service: BackupService): Promise<Drill[]> {
  try {
    return await service.drills.list({ limit: 500 })
  } catch {
    return []
  }
}

/** A registry of our own (not prom-client's global one), so several apps in one process do not collide. */
export function createMetrics (service: BackupService, backupDir: string): { registry: Registry, dispose: () => void } {
  const registry = new Registry()
  new Gauge({
    name: 'pgkeep_backups', help: 'Backups in the registry by status', labelNames: ['status'], registers: [registry],
    collect () {
      const counts = new Map<string, number>(STATUSES.map(s => [s, 0]))
      for (const b of allBackups(service)) counts.set(b.status, (counts.get(b.status) ?? 0) + 1)
      for (const [status, n] of counts) this.set({ status }, n)
    },
  })
  new Gauge({
    name: 'pgkeep_last_success_timestamp_seconds', help: 'Finish time of the newest completed backup per target', labelNames: ['target'], registers: [registry],
    collect () {
      this.reset()
      for (const [target, b] of newestCompletedByTarget(allBackups(service))) this.set({ target }, Date.parse(b.finishedAt ?? b.createdAt) / 1000)
    },
  })
  new Gauge({
    name: 'pgkeep_last_success_size_bytes', help: 'Size of the newest completed backup per target', labelNames: ['target'], registers: [registry],
    collect () {
      this.reset()
      for (const [target, b] of newestCompletedByTarget(allBackups(service))) this.set({ target }, b.sizeBytes ?? 0)
    },
  })
  new Gauge({
    name: 'pgkeep_storage_used_bytes', help: 'Bytes stored by completed backups', registers: [registry],
    collect () {
      this.set(allBackups(service).reduce((sum, b) => sum + (b.status === 'completed' ? b.sizeBytes ?? 0 : 0), 0))
    },
  })
  new Gauge({
    name: 'pgkeep_storage_free_bytes', help: 'Free bytes on the backups volume', registers: [registry],
    async collect () {
      const fs = await statfs(backupDir)
      this.set(fs.bavail * fs.bsize)
    },
  })
  new Gauge({ name: 'pgkeep_active_jobs', help: 'Backups queued or running in this process', registers: [registry], collect () { this.set(service.active().length) } })
  new Gauge({
    name: 'pgkeep_drill_last_success_timestamp_seconds', help: 'End of the newest passed restore drill per target', labelNames: ['target'], registers: [registry],
    async collect () {
      this.reset()
      for (const [target, d] of newestDrillByTarget(await recentDrills(service), true)) this.set({ target }, Date.parse(d.finishedAt ?? d.startedAt) / 1000)
    },
  })
  new Gauge({
    name: 'pgkeep_drill_duration_seconds', help: 'Wall time of the newest ended restore drill per target (restore, checks and drop)', labelNames: ['target'], registers: [registry],
    async collect () {
      this.reset()
      for (const [target, d] of newestDrillByTarget(await recentDrills(service), false)) this.set({ target }, (d.durationMs ?? 0) / 1000)
    },
  })
  const duration = new Histogram({
    name: 'pgkeep_backup_duration_seconds', help: 'Wall time of completed backups (start to completed)', labelNames: ['target'],
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600], registers: [registry],
  })
  const written = new Counter({ name: 'pgkeep_bytes_written_total', help: 'Bytes of completed backups written by this process', registers: [registry] })
  if (service.catalog !== undefined) registerInstanceMetrics(registry, async () => await service.instanceStatus())

  const onStatus = (b: Backup, origin?: 'remote'): void => {
    // this process's counters: another instance's backups are counted there
    if (origin === 'remote' || b.status !== 'completed' || !b.startedAt || !b.finishedAt) return
    duration.observe({ target: b.target }, Math.max(0, (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000))
    written.inc(b.sizeBytes ?? 0)
  }
  service.on('status', onStatus)
  return { registry, dispose: () => { service.off('status', onStatus) } }
}

const metricsRoutes: FastifyPluginAsync = async (fastify) => {
  const metrics = createMetrics(fastify.backupService, fastify.config.backupDir)
  fastify.addHook('onClose', async () => { metrics.dispose() })
  fastify.get('/metrics', { schema: { tags: ['health'], hide: true }, config: { rateLimit: false } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

export default metricsRoutes
