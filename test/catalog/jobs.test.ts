import t, { type Test } from 'tap'
import { liveInstances } from '../../server/catalog/instances.ts'
import type { Target } from '../../server/config.ts'
import { JobWorker, type JobRunner, type JobWorkerOptions } from '../../server/catalog/job-worker.ts'
import { ProgressRelay, type RelayedProgress } from '../../server/catalog/progress-relay.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { catalogTarget, gate, openInstances, waitFor } from './fixtures/catalog.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

const fast = { leaseMs: 3000, heartbeatMs: 300, pollMs: 300 }

async function startWorkers (t: Test, database: string, n: number, opts: Omit<JobWorkerOptions, 'version'>): Promise<JobWorker[]> {
  const dbs = await openInstances(await catalogTarget(cluster, database), n)
  const workers: JobWorker[] = []
  for (const db of dbs) workers.push(await JobWorker.start(db, { version: 'test', timings: fast, ...opts }))
  t.teardown(async () => {
    for (const w of workers) await w.close({ abortRunning: true })
    for (const db of dbs) await db.close()
  })
  return workers
}

t.test('100 jobs queued at once through three instances run exactly once each, spread over all three', async t => {
  const runs = new Map<string, number>()
  const ranOn = new Set<string>()
  // each instance has 2 slots and its first jobs hold them until all three have claimed: the spread is by construction
  const allClaimed = gate()
  const busy = new Map<string, number>()
  let mostBusy = 0
  const runner: JobRunner = async (job) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1)
    ranOn.add(job.instanceId!)
    busy.set(job.instanceId!, (busy.get(job.instanceId!) ?? 0) + 1)
    mostBusy = Math.max(mostBusy, busy.get(job.instanceId!)!)
    if (ranOn.size === 3) allClaimed.open()
    await allClaimed.promise
    busy.set(job.instanceId!, busy.get(job.instanceId!)! - 1)
  }
  const workers = await startWorkers(t, 'catalog_jobs_hundred', 3, { runner, concurrency: 2 })
  const ids = Array.from({ length: 100 }, (_, i) => `job-${String(i).padStart(3, '0')}`)
  await Promise.all(ids.map(async (id, i) => await workers[i % 3].queue.enqueue({ id, kind: 'backup', payload: { n: i } })))

  await waitFor(async () => (await workers[0].queue.depth()).queued === 0 && (await workers[0].queue.depth()).running === 0)
  t.equal(runs.size, 100, 'every job ran')
  t.same([...runs.values()].filter(n => n !== 1), [], 'none ran twice')
  t.equal(ranOn.size, 3, 'all three instances ran jobs')
  t.ok(mostBusy <= 2, `no instance ran more than its 2 slots at once (most: ${mostBusy})`)
  const states = await cluster.psql("SELECT state, attempt, count(*) FROM pgkeep.jobs GROUP BY 1, 2", 'catalog_jobs_hundred')
  t.equal(states.trim(), 'done|1|100')
})

t.test('an instance started with --no-worker never claims; a worker instance takes the queue', async t => {
  const claimedBy: string[] = []
  const runner: JobRunner = async (job) => { claimedBy.push(job.instanceId!) }
  const [apiOnly] = await startWorkers(t, 'catalog_jobs_noworker', 1, { runner, concurrency: 4, worker: false })
  t.equal(apiOnly.isWorker, false)
  for (const id of ['a', 'b', 'c']) await apiOnly.queue.enqueue({ id, kind: 'backup' })
  let beats = 0
  apiOnly.on('heartbeat', () => { beats++ })
  await waitFor(() => beats >= 3)
  t.same(await apiOnly.queue.depth(), { queued: 3, running: 0 }, 'nothing claimed over three heartbeats')
  const [db2] = await openInstances(targetOf('catalog_jobs_noworker'), 1)
  t.match(await liveInstances(db2), [{ id: apiOnly.instanceId, worker: false }])

  const worker = await JobWorker.start(db2, { version: 'test', timings: fast, runner, concurrency: 2 })
  t.teardown(async () => { await worker.close(); await db2.close() })
  await waitFor(() => claimedBy.length === 3)
  t.same(new Set(claimedBy), new Set([worker.instanceId]))
})

/** the target of a database an earlier startWorkers() made */
function targetOf (database: string): Target {
  return { name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, database, password: cluster.password }
}

t.test('a cancel sent through instance A stops the job running on instance B through NOTIFY', async t => {
  // heartbeats an hour apart: only the NOTIFY can carry this cancel
  const slow = { leaseMs: 3_600_000, heartbeatMs: 3_600_000, pollMs: 300 }
  const started = gate()
  let reason: unknown
  const runner: JobRunner = async (_job, signal) => {
    started.open()
    await new Promise<void>(resolve => signal.addEventListener('abort', () => { resolve() }, { once: true }))
    reason = signal.reason
  }
  const cancelsHeard: string[] = []
  const [b, a] = await startWorkers(t, 'catalog_jobs_cancel', 2, { runner, concurrency: 1, timings: slow, onCancel: id => cancelsHeard.push(id) })
  await a.close()
  await b.queue.enqueue({ id: 'long-dump', kind: 'backup' })
  await started.promise
  const ended = new Promise<{ outcome: { state: string } }>(resolve => b.once('finished', resolve))
  t.equal(await a.queue.requestCancel('long-dump'), 'requested')
  t.match((await ended).outcome, { state: 'cancelled' })
  t.match(reason, { code: 'CANCELLED' })
  t.same(cancelsHeard, ['long-dump'], 'heard once, on B')
  t.match(await a.queue.get('long-dump'), { state: 'cancelled', cancelRequested: true, instanceId: b.instanceId })
})

t.test('a cancel of a queued job dequeues it: it never runs, and a finished job is not cancelled again', async t => {
  const ran: string[] = []
  const [apiOnly] = await startWorkers(t, 'catalog_jobs_dequeue', 1, { runner: async job => { ran.push(job.id) }, concurrency: 1, worker: false })
  await apiOnly.queue.enqueue({ id: 'waiting', kind: 'backup' })
  t.equal(await apiOnly.queue.requestCancel('waiting'), 'dequeued')
  t.match(await apiOnly.queue.get('waiting'), { state: 'cancelled', error: { code: 'CANCELLED' } })
  t.equal(await apiOnly.queue.requestCancel('waiting'), 'not-active')
  t.equal(await apiOnly.queue.requestCancel('no-such-job'), 'not-active')
  t.same(await apiOnly.queue.claim('someone', 5, 1000), [], 'a cancelled job is not claimable')
})

t.test('progress published on B reaches A throttled (a burst collapses to its newest), never echoed back to B', async t => {
  const dbs = await openInstances(await catalogTarget(cluster, 'catalog_jobs_progress'), 2)
  t.teardown(async () => { for (const db of dbs) await db.close() })
  const onA = new ProgressRelay(dbs[0], 'instance-a')
  const onB = new ProgressRelay(dbs[1], 'instance-b')
  const atA: RelayedProgress[] = []
  const atB: RelayedProgress[] = []
  await onA.subscribe(p => atA.push(p))
  await onB.subscribe(p => atB.push(p))
  for (let bytes = 1; bytes <= 20; bytes++) onB.publish('dump-1', { bytes })
  onB.end('dump-1')
  await waitFor(() => atA.length >= 2)
  // a marker after the burst: once it arrives, everything sent before it has too (one sender, one channel)
  onB.publish('dump-2', { marker: true })
  await waitFor(() => atA.some(p => p.jobId === 'dump-2'))
  t.same(atA.filter(p => p.jobId === 'dump-1').map(p => p.payload), [{ bytes: 1 }, { bytes: 20 }])
  t.match(atA[0], { instanceId: 'instance-b' })
  t.same(atB, [])
})

t.test('the instances view lists live instances with their worker slots and running jobs; a closed one leaves it', async t => {
  const hold = gate()
  const [w1, w2] = await startWorkers(t, 'catalog_jobs_instances', 2, { runner: async () => { await hold.promise }, concurrency: 3 })
  await w1.queue.enqueue({ id: 'held', kind: 'backup' })
  await waitFor(() => w1.running.length + w2.running.length === 1)
  const holder = w1.running.length === 1 ? w1 : w2
  const other = holder === w1 ? w2 : w1
  const [db] = await openInstances(targetOf('catalog_jobs_instances'), 1)
  t.teardown(() => db.close())
  const live = await liveInstances(db)
  t.same(live.map(i => i.id).sort(), [w1.instanceId, w2.instanceId].sort())
  t.match(live.find(i => i.id === holder.instanceId), { worker: true, concurrency: 3, running: 1, pid: process.pid })
  t.match(w1.instanceId, new RegExp(`-${process.pid}-[0-9a-f]{6}$`))
  await other.close()
  t.same((await liveInstances(db)).map(i => i.id), [holder.instanceId])
  hold.open()
})

t.test('a runner that throws ends its job failed with the error; one that resolves ends it done', async t => {
  const ended = new Map<string, string>()
  const [w] = await startWorkers(t, 'catalog_jobs_outcomes', 1, {
    concurrency: 2,
    runner: async job => { if (job.id === 'bad') throw new Error('pg_dump exited 1') },
  })
  w.on('finished', ({ job, outcome }) => { ended.set(job.id, outcome.state) })
  await w.queue.enqueue({ id: 'good', kind: 'backup' })
  await w.queue.enqueue({ id: 'bad', kind: 'backup' })
  await waitFor(() => ended.size === 2)
  t.match(await w.queue.get('good'), { state: 'done', error: null })
  t.match(await w.queue.get('bad'), { state: 'failed', error: { code: 'INTERNAL', message: 'pg_dump exited 1' } })
})

t.test('ended jobs older than the keep time are pruned; live ones, recent ones and interrupted ones owed a clean-up stay', async t => {
  const [w] = await startWorkers(t, 'catalog_jobs_prune', 1, { runner: async () => {}, concurrency: 1, worker: false })
  for (const id of ['old-done', 'old-uncleaned', 'recent-done', 'queued']) await w.queue.enqueue({ id, kind: 'backup' })
  await cluster.psql(`UPDATE pgkeep.jobs SET state = 'done', finished_at = now() - interval '8 days' WHERE id = 'old-done';
    UPDATE pgkeep.jobs SET state = 'interrupted', finished_at = now() - interval '8 days', cleanup_attempts = 1 WHERE id = 'old-uncleaned';
    UPDATE pgkeep.jobs SET state = 'done', finished_at = now() WHERE id = 'recent-done'`, 'catalog_jobs_prune')
  t.equal(await w.queue.pruneEnded(7), 1)
  t.equal((await cluster.psql('SELECT string_agg(id, \',\' ORDER BY id) FROM pgkeep.jobs', 'catalog_jobs_prune')).trim(), 'old-uncleaned,queued,recent-done')
})
