import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import type { Schedule } from '../../schemas/schedule.ts'
import { buildOverview, type OverviewInput } from '../../server/overview/overview.ts'

const NOW = new Date('2026-11-30T12:00:00Z')
const hoursAgo = (h: number): string => new Date(NOW.getTime() - h * 3_600_000).toISOString()
let n = 0
function backup (target: string, status: Backup['status'], hours: number, extra: Partial<Backup> = {}): Backup {
  n++
  return {
    id: `0190b8a0-0000-7000-8000-${String(n).padStart(12, '0')}`, name: `${target}-${n}`, target, database: target, format: 'custom',
    compression: 'zstd', options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [] }, status,
    createdAt: hoursAgo(hours + 0.1), startedAt: hoursAgo(hours + 0.1), finishedAt: hoursAgo(hours), createdBy: 'test', pinned: false,
    ...(status === 'completed' ? { sizeBytes: 1000 } : {}), ...extra,
  } as Backup
}
function schedule (name: string, target: string | undefined, next: string, enabled = true): Schedule {
  return { name, cron: '0 3 * * *', backup: target ? { target } : {}, enabled, nextRuns: [next], missed: [], source: 'api' } as unknown as Schedule
}
const input = (over: Partial<OverviewInput>): OverviewInput =>
  ({ targets: ['orders', 'crm'], backups: [], schedules: [], staleAfterHours: () => 26, now: NOW, ...over })

t.test('a target is stale past its staleAfterHours or with no backup at all; 0 means never', async t => {
  const o = buildOverview(input({
    targets: ['fresh', 'old', 'none', 'manual'],
    backups: [backup('fresh', 'completed', 2), backup('old', 'completed', 30), backup('manual', 'completed', 500)],
    staleAfterHours: target => target === 'manual' ? 0 : 26,
  }))
  const by = Object.fromEntries(o.targets.map(c => [c.target, c]))
  t.equal(by.fresh.stale, false)
  t.equal(Math.round(by.fresh.lastCompleted!.ageSeconds), 2 * 3600)
  t.equal(by.old.stale, true)
  t.equal(by.none.stale, true)
  t.notOk(by.none.lastCompleted)
  t.equal(by.manual.stale, false)
})

t.test('failures of the last 24 h count, with the newest message; a cancel and an older failure do not', async t => {
  const o = buildOverview(input({
    backups: [
      backup('orders', 'failed', 1, { error: { code: 'PG_CONNECTION_FAILED', message: 'connection refused' } }),
      backup('orders', 'failed', 3, { error: { code: 'DISK_FULL', message: 'no space' } }),
      backup('orders', 'failed', 30), backup('orders', 'cancelled', 2), backup('orders', 'completed', 4),
    ],
  }))
  const orders = o.targets.find(c => c.target === 'orders')!
  t.equal(orders.failures24h, 2)
  t.match(orders.lastFailure, { code: 'PG_CONNECTION_FAILED', message: 'connection refused' })
  t.equal(o.targets.find(c => c.target === 'crm')!.failures24h, 0)
})

t.test('next run is the earliest enabled schedule of the target (no target = default); storage and its 7-day change', async t => {
  const o = buildOverview(input({
    targets: ['default', 'orders'],
    backups: [backup('orders', 'completed', 24 * 10), backup('orders', 'completed', 24 * 3), backup('orders', 'completed', 1), backup('orders', 'failed', 1)],
    schedules: [schedule('late', 'orders', '2026-12-01T03:00:00.000Z'), schedule('soon', 'orders', '2026-11-30T18:00:00.000Z'),
      schedule('off', 'orders', '2026-11-30T13:00:00.000Z', false), schedule('implicit', undefined, '2026-12-02T00:00:00.000Z')],
  }))
  const orders = o.targets.find(c => c.target === 'orders')!
  t.same(orders.nextRun, { at: '2026-11-30T18:00:00.000Z', schedule: 'soon' })
  t.same(o.targets.find(c => c.target === 'default')!.nextRun, { at: '2026-12-02T00:00:00.000Z', schedule: 'implicit' })
  t.match(orders.storage, { bytes: 3000, backups: 3, change7dBytes: 2000 })
  t.same(orders.storage.points.map(p => p.bytes), [1000, 2000, 3000])
})

t.test('the last drill is shown when backups carry one, and its absence is fine; unconfigured targets with backups get a card', async t => {
  const drilled = backup('orders', 'completed', 5, { drill: { at: hoursAgo(4), ok: false } } as Partial<Backup>)
  const o = buildOverview(input({ backups: [drilled, backup('orders', 'completed', 1), backup('gone', 'completed', 1)] }))
  t.same(o.targets.find(c => c.target === 'orders')!.lastDrill, { at: hoursAgo(4), ok: false, backupId: drilled.id })
  t.notOk(o.targets.find(c => c.target === 'crm')!.lastDrill)
  t.ok(o.targets.find(c => c.target === 'gone'))
})
