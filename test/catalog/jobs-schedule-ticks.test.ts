import { Cron } from 'croner'
import t, { type Test } from 'tap'
import type { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { CatalogJobQueue } from '../../server/catalog/job-queue.ts'
import { ScheduleTicks } from '../../server/catalog/schedule-ticks.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { catalogTarget, openInstances, waitFor } from './fixtures/catalog.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

async function instances (t: Test, database: string, n: number): Promise<CatalogDb[]> {
  const dbs = await openInstances(await catalogTarget(cluster, database), n)
  t.teardown(async () => { for (const db of dbs) await db.close() })
  return dbs
}

t.test('a schedule firing every second on three instances: for 10 ticks, each tick has exactly one row and one job', async t => {
  const dbs = await instances(t, 'catalog_ticks_three', 3)
  const attempts = new Map<number, number>()
  const wins = new Map<number, string[]>()
  const inFlight = new Set<Promise<void>>()
  let jobSeq = 0
  const crons = dbs.map((db, i) => {
    const ticks = new ScheduleTicks(db)
    const queue = new CatalogJobQueue(db)
    const instanceId = `instance-${i}`
    return new Cron('* * * * * *', (self: Cron) => {
      const tickAt = new Date(Math.floor((self.currentRun() ?? new Date()).getTime() / 1000) * 1000)
      attempts.set(tickAt.getTime(), (attempts.get(tickAt.getTime()) ?? 0) + 1)
      const p = ticks.fire('every-second', tickAt, instanceId, async client => {
        const id = `backup-${instanceId}-${jobSeq++}`
        await queue.enqueue({ id, kind: 'backup', payload: { schedule: 'every-second', tickAt } }, client)
        return id
      }).then(r => {
        if (r.won) wins.set(tickAt.getTime(), [...(wins.get(tickAt.getTime()) ?? []), r.jobId!])
      })
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
    })
  })
  // ticks all three instances fired
  const fullTicks = (): number[] => [...attempts].filter(([, n]) => n === 3).map(([tick]) => tick)
  await waitFor(() => fullTicks().length >= 10, 100)
  for (const c of crons) c.stop()
  await waitFor(() => inFlight.size === 0)

  for (const tick of fullTicks()) t.equal(wins.get(tick)?.length, 1, `tick ${new Date(tick).toISOString()} won once`)
  const rows = await cluster.psql("SELECT count(*), count(DISTINCT tick_at), count(job_id), count(*) FILTER (WHERE outcome = 'fired') FROM pgkeep.schedule_ticks WHERE schedule = 'every-second'", 'catalog_ticks_three')
  const [count, distinct, withJob, fired] = rows.trim().split('|').map(Number)
  t.equal(count, wins.size)
  t.equal(distinct, count)
  t.equal(withJob, count)
  t.equal(fired, count)
  t.equal((await cluster.psql('SELECT count(*) FROM pgkeep.jobs j JOIN pgkeep.schedule_ticks s ON s.job_id = j.id', 'catalog_ticks_three')).trim(), String(count), 'one job per tick row')
  t.equal((await cluster.psql('SELECT count(*) FROM pgkeep.jobs', 'catalog_ticks_three')).trim(), String(count), 'and no other job')
})

t.test('ticks nobody fired (every instance that could was down) are recorded missed once, by one of three sweeping instances', async t => {
  const dbs = await instances(t, 'catalog_ticks_missed', 3)
  const base = Date.now() - 60_000
  const since = new Date(base)
  // an hourly-like schedule, its last three fire times in the past and never fired
  const fireTimes = (after: Date, until: Date): Date[] => [1, 2, 3].map(n => new Date(base + n * 10_000)).filter(d => d > after && d <= until)
  const results = await Promise.all(dbs.map(async (db, i) => await new ScheduleTicks(db).sweepMissed('nightly', fireTimes, since, `instance-${i}`)))
  const recorded = results.filter(r => r !== undefined)
  t.equal(recorded.length, 1, 'one instance recorded the gap')
  t.match(recorded[0], { schedule: 'nightly', tickAt: new Date(base + 30_000), count: 3 })
  const ticks = await new ScheduleTicks(dbs[0]).ticks('nightly')
  t.match(ticks, [{ outcome: 'missed', tickAt: new Date(base + 30_000), missedCount: 3, jobId: null }])
  t.equal(ticks.length, 1)

  t.equal(await new ScheduleTicks(dbs[1]).sweepMissed('nightly', fireTimes, since, 'instance-1'), undefined, 'a later sweep finds nothing new')
  // an instance that wakes up late and fires a tick the sweep already counted loses: no job
  const late = await new ScheduleTicks(dbs[2]).fire('nightly', new Date(base + 20_000), 'instance-2', async () => { throw new Error('must not queue') })
  t.same(late, { won: false })
})

t.test('a tick fired on time is not reported missed, and a tick inside the grace is left for its firer', async t => {
  const [db] = await instances(t, 'catalog_ticks_ontime', 1)
  const ticks = new ScheduleTicks(db, { graceMs: 60_000 })
  const queue = new CatalogJobQueue(db)
  const fired = new Date(Date.now() - 120_000)
  const inGrace = new Date(Date.now() - 1000)
  const fireTimes = (after: Date, until: Date): Date[] => [fired, inGrace].filter(d => d > after && d <= until)
  t.match(await ticks.fire('hourly', fired, 'a', async client => (await queue.enqueue({ id: 'b-1', kind: 'backup' }, client)).id), { won: true, jobId: 'b-1' })
  t.equal(await ticks.sweepMissed('hourly', fireTimes, new Date(0), 'b'), undefined)
  t.same((await ticks.ticks('hourly')).map(r => r.outcome), ['fired'])
})

t.test('a tick whose job cannot be queued leaves no row: the tick stays free for another instance', async t => {
  const [db] = await instances(t, 'catalog_ticks_rollback', 1)
  const ticks = new ScheduleTicks(db)
  const tick = new Date(Math.floor(Date.now() / 1000) * 1000)
  await t.rejects(ticks.fire('s', tick, 'a', async () => { throw new Error('queue refused') }), /queue refused/)
  t.same(await ticks.ticks('s'), [])
  t.match(await ticks.fire('s', tick, 'b', async () => 'job-b'), { won: true, jobId: 'job-b' })
})

t.test('a sweep prunes a schedule\'s ticks older than a week but keeps its newest', async t => {
  const [db] = await instances(t, 'catalog_ticks_prune', 1)
  const ticks = new ScheduleTicks(db)
  const day = 86_400_000
  for (const ago of [10, 9, 8]) await ticks.fire('weekly', new Date(Date.now() - ago * day), 'a', async () => `job-${ago}`)
  t.equal(await ticks.sweepMissed('weekly', () => [], new Date(0), 'a'), undefined)
  t.same((await ticks.ticks('weekly')).map(r => r.jobId), ['job-8'])
})
