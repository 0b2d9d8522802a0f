import t from 'tap'
import { JobWorker, type JobRunner } from '../../server/catalog/job-worker.ts'
import { startCluster } from '../helpers/pg-cluster.ts'
import { catalogTarget, gate, openInstances, waitFor } from './fixtures/catalog.ts'

// a cluster of its own: this file stops and starts it
const cluster = await startCluster()
t.teardown(cluster.stop)

const timings = { leaseMs: 2000, heartbeatMs: 250, pollMs: 250 }

t.test('the catalog restarts mid-run, down longer than a lease: workers reconnect, every job runs once, no lease is expired for the outage', async t => {
  const target = await catalogTarget(cluster, 'catalog_jobs_restart')
  const dbs = await openInstances(target, 3)
  const runs = new Map<string, number>()
  const outageOver = gate()
  const runner: JobRunner = async job => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1)
    await outageOver.promise
  }
  const interrupted: string[] = []
  const workers: JobWorker[] = []
  for (const db of dbs) {
    const w = await JobWorker.start(db, { version: 'test', concurrency: 2, timings, runner, onInterrupted: async job => { interrupted.push(job.id) } })
    workers.push(w)
  }
  t.teardown(async () => {
    for (const w of workers) await w.close({ abortRunning: true })
    for (const db of dbs) await db.close()
  })
  const ids = Array.from({ length: 30 }, (_, i) => `job-${i}`)
  for (const id of ids) await workers[0].queue.enqueue({ id, kind: 'backup' })
  await waitFor(() => workers.every(w => w.running.length === 2))

  await cluster.serverDown!()
  // the outage outlasts the lease by the clock: every lease in the catalog is past its time when it comes back
  const downAt = Date.now()
  await waitFor(() => Date.now() > downAt + timings.leaseMs * 1.5, 100)
  outageOver.open()
  await cluster.serverUp!()

  await waitFor(async () => {
    try {
      return (await workers[0].queue.depth()).queued + (await workers[0].queue.depth()).running === 0
    } catch { return false }
  }, 100)
  t.equal(runs.size, 30, 'every job ran')
  t.same([...runs.values()].filter(n => n !== 1), [], 'none twice')
  t.same(interrupted, [], 'no lease was expired by the outage')
  t.equal((await cluster.psql('SELECT state, attempt, count(*) FROM pgkeep.jobs GROUP BY 1, 2', 'catalog_jobs_restart')).trim(), 'done|1|30')
})
