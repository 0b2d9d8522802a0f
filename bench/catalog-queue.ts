// Issue 14 benchmark: the shared job queue's throughput, 3 instances against 1, each with the same worker slots.
// Two kinds of job: no-op (what the queue itself costs per job: claim + finish, two catalog round trips) and
// sleep-10ms (work that waits, as a dump waits on pg_dump: more instances mean more slots, so the ratio nears 3).
// The instances are three CatalogDb + JobWorker in one process (the queue's cost is the catalog's, not node's).
// Size by BENCH_QUEUE_JOBS (default 300) and BENCH_QUEUE_SLOTS (worker slots per instance, default 4).
import { CatalogDb } from '../server/catalog/catalog-db.ts'
import { JobWorker } from '../server/catalog/job-worker.ts'
import { startCluster, type TestCluster } from '../test/helpers/pg-cluster.ts'
import { line } from './measure.ts'

const jobs = Number(process.env.BENCH_QUEUE_JOBS ?? 300)
const slots = Number(process.env.BENCH_QUEUE_SLOTS ?? 4)
let rounds = 0

async function round (cluster: TestCluster, instances: number, jobMs: number): Promise<number> {
  const database = `bench_queue_${rounds++}`
  await cluster.createDatabase(database)
  const target = { name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database }
  const dbs: CatalogDb[] = []
  for (let i = 0; i < instances; i++) dbs.push(await CatalogDb.open(target))
  let finished = 0
  let allDone!: () => void
  const done = new Promise<void>(resolve => { allDone = resolve })
  const runner = jobMs > 0 ? async () => { await new Promise(resolve => setTimeout(resolve, jobMs)) } : async () => {}
  const workers: JobWorker[] = []
  for (const db of dbs) {
    const w = await JobWorker.start(db, { version: 'bench', concurrency: slots, runner })
    w.on('finished', () => { if (++finished === jobs) allDone() })
    workers.push(w)
  }
  // the clock starts with the jobs: all queued in one statement, the workers woken by its NOTIFY
  const started = performance.now()
  await dbs[0].query(`WITH queued AS (INSERT INTO pgkeep.jobs (id, kind) SELECT 'job-' || g, 'bench' FROM generate_series(1, $1) g)
    SELECT pg_catalog.pg_notify('pgkeep_jobs', 'bench')`, [jobs])
  await done
  const ms = performance.now() - started
  for (const w of workers) await w.close()
  for (const db of dbs) await db.close()
  return ms
}

const cluster = await startCluster()
try {
  console.log(`${jobs} jobs, ${slots} worker slots per instance, one catalog on this machine`)
  for (const [label, jobMs] of [['no-op jobs', 0], ['sleep-10ms jobs', 10]] as const) {
    const one = await round(cluster, 1, jobMs)
    const three = await round(cluster, 3, jobMs)
    line(`${label}: 1 instance`, `${(jobs / one * 1000).toFixed(0)} jobs/s (${one.toFixed(0)} ms)`)
    line(`${label}: 3 instances`, `${(jobs / three * 1000).toFixed(0)} jobs/s (${three.toFixed(0)} ms)`)
    line(`${label}: 3 vs 1`, `x${(one / three).toFixed(2)}`)
  }
} finally {
  await cluster.stop()
}
