import t, { type Test } from 'tap'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { PgScheduleStore } from '../../server/schedules/schedule-store-pg.ts'
import { Scheduler, type ScheduledBackupService, type TickClaim } from '../../server/schedules/scheduler.ts'
import { ScheduleTicks } from '../../server/catalog/schedule-ticks.ts'
import type { Backup } from '../../schemas/backup.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { emptyCatalog } from './catalog-helpers.ts'

// Two schedulers (two instances) on one catalog: a schedule created, changed or removed on one is taken up by
// the other, and a tick both arm is run by the one that claims it (catalog/schedule-ticks.ts).

const cluster = await testCluster()
t.teardown(cluster.stop)
const catalog = await emptyCatalog(cluster, 'catalog_cross_schedules')
const [dbA, dbB] = await Promise.all([1, 2].map(async () => await CatalogDb.open(catalog.target)))
t.teardown(async () => { await dbA.close(); await dbB.close() })

// the schedulers' backup service is never called: no tick comes while the test runs
const noRuns: ScheduledBackupService = {
  create: async () => { throw new Error('no run expected') },
  waitFor: async () => { throw new Error('no run expected') },
  get: () => { throw new Error('no run expected') },
  waitForSet: async () => { throw new Error('no run expected') },
  getSet: () => { throw new Error('no run expected') },
  cleanup: async () => { throw new Error('no run expected') },
}

async function instance (t: Test, db: CatalogDb, config: ReturnType<typeof testConfig>): Promise<Scheduler> {
  const scheduler = await Scheduler.open(noRuns, config, { store: await PgScheduleStore.open(db) })
  t.teardown(() => scheduler.close())
  await scheduler.start()
  return scheduler
}

t.test('a schedule created, changed and removed on A is armed, re-armed and dropped by B', async t => {
  const config = testConfig(cluster, 'catalog_cross_schedules')
  t.teardown(config.cleanup)
  const a = await instance(t, dbA, config)
  const b = await instance(t, dbB, config)

  await a.create({ name: 'nightly', cron: '0 3 * * *', timezone: 'UTC', backup: { compression: 'none' } }, 'alice')
  await waitUntil(() => b.list().some(s => s.name === 'nightly'), 15_000, 'B to take up the new schedule')
  const seen = b.get('nightly')
  t.match(seen, { cron: '0 3 * * *', source: 'api', createdBy: 'alice', enabled: true })
  t.equal(seen.nextRuns.length, 5, 'armed on B: it has next runs')
  t.ok(seen.nextRuns.every(r => r.endsWith('T03:00:00.000Z')))

  await a.update('nightly', { cron: '30 4 * * *' })
  await waitUntil(() => b.get('nightly').cron === '30 4 * * *', 15_000, 'B to take up the change')
  t.ok(b.get('nightly').nextRuns.every(r => r.endsWith('T04:30:00.000Z')), 're-armed with the new pattern')

  await b.update('nightly', { enabled: false })
  await waitUntil(() => !a.get('nightly').enabled, 15_000, 'A to take up B\'s change')
  t.same(a.get('nightly').nextRuns, [])

  await a.remove('nightly')
  await waitUntil(() => b.list().length === 0, 15_000, 'B to drop the removed schedule')
  t.throws(() => b.get('nightly'), { code: 'NOT_FOUND' })
})

t.test('a scheduler starting later finds the schedules another instance created', async t => {
  await catalog.empty()
  const config = testConfig(cluster, 'catalog_cross_schedules')
  t.teardown(config.cleanup)
  const a = await instance(t, dbA, config)
  await a.create({ name: 'weekly', cron: '0 3 * * 0', backup: {} }, 'alice')
  const b = await instance(t, dbB, config)
  t.match(b.get('weekly'), { cron: '0 3 * * 0', source: 'api' })
})

t.test('a schedule every second on two instances runs each tick once, on whichever instance claims it', async t => {
  await catalog.empty()
  const config = testConfig(cluster, 'catalog_cross_schedules')
  t.teardown(config.cleanup)
  // a service that completes every create at once and counts who ran which tick
  const runs: Array<{ instance: string, at: number }> = []
  const counting = (instance: string): ScheduledBackupService => {
    const made = new Map<string, Backup>()
    return {
      create: async () => {
        const b = { id: `${instance}-${runs.length}`, status: 'completed', target: 'default' } as unknown as Backup
        runs.push({ instance, at: Date.now() })
        made.set(b.id, b)
        return b
      },
      waitFor: async (id: string) => made.get(id)!,
      get: (id: string) => made.get(id)!,
      waitForSet: async () => { throw new Error('no set expected') },
      getSet: () => { throw new Error('no set expected') },
      cleanup: async () => { throw new Error('no retention expected') },
    } as unknown as ScheduledBackupService
  }
  const claimOn = (db: CatalogDb, id: string): TickClaim => {
    const mine = new ScheduleTicks(db)
    return async (schedule, at) => await mine.claim(schedule, at, id)
  }
  const a = await Scheduler.open(counting('a'), config, { store: await PgScheduleStore.open(dbA), claimTick: claimOn(dbA, 'a') })
  t.teardown(() => a.close())
  const b = await Scheduler.open(counting('b'), config, { store: await PgScheduleStore.open(dbB), claimTick: claimOn(dbB, 'b') })
  t.teardown(() => b.close())
  await a.start()
  await b.start()
  await a.create({ name: 'every-second', cron: '* * * * * *', timezone: 'UTC', backup: {} }, 'alice')
  await waitUntil(() => b.list().some(s => s.name === 'every-second'), 15_000, 'B to arm the schedule')
  await waitUntil(() => runs.length >= 10, 60_000, 'ten runs')
  await a.remove('every-second')
  const fired = Number((await dbA.query<{ n: string }>("SELECT count(*) AS n FROM pgkeep.schedule_ticks WHERE schedule = 'every-second' AND outcome = 'fired'")).rows[0].n)
  // both instances ran their timers for every tick: without the claim every tick would run twice and take no row
  t.ok(runs.length >= 10 && runs.length <= fired, `no tick ran twice (${runs.length} runs, ${fired} ticks taken)`)
})
