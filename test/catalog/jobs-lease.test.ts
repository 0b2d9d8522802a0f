import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import type { CatalogJob } from '../../server/catalog/job-queue.ts'
import { JobWorker } from '../../server/catalog/job-worker.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { catalogTarget, openInstances, waitFor } from './fixtures/catalog.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

const timings = { leaseMs: 1500, heartbeatMs: 250, pollMs: 250 }

t.test('an instance killed with SIGKILL mid-job: another marks the job INTERRUPTED once its lease runs out, and one clean-up hook gets it, once', async t => {
  const target = await catalogTarget(cluster, 'catalog_jobs_lease_kill')
  const dbs = await openInstances(target, 3)
  const cleaned: Array<{ by: string, job: CatalogJob }> = []
  // API-only survivors: they sweep leases but do not take the job before the child does
  const survivors: JobWorker[] = []
  for (const db of dbs) {
    const w: JobWorker = await JobWorker.start(db, {
      version: 'test', concurrency: 1, worker: false, timings,
      runner: async () => {},
      onInterrupted: async job => { cleaned.push({ by: w.instanceId, job }) },
    })
    survivors.push(w)
  }
  t.teardown(async () => {
    for (const w of survivors) await w.close()
    for (const db of dbs) await db.close()
  })
  await survivors[0].queue.enqueue({ id: 'dump-on-doomed-host', kind: 'backup', payload: { multipartUploadId: 'u-1' } })

  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/hold-job-child.ts')], {
    env: { ...process.env, PGKEEP_TEST_CHILD: JSON.stringify({ target, timings }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  await waitFor(() => out.includes('\n'))
  const [, jobId, childInstance] = out.trim().split(' ')
  t.equal(jobId, 'dump-on-doomed-host')
  t.match(await survivors[0].queue.get(jobId), { state: 'running', instanceId: childInstance })

  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
  const killedAt = Date.now()
  await waitFor(() => cleaned.length > 0)
  // a figure for the record, not an assertion: lease + up to one heartbeat, plus however late this machine is
  t.comment(`marked INTERRUPTED and cleaned ${Date.now() - killedAt} ms after the kill (lease ${timings.leaseMs} ms, heartbeat ${timings.heartbeatMs} ms)`)
  // every survivor sweeps a few more times: nobody hands the job to a clean-up hook again
  const beats = survivors.map(() => 0)
  survivors.forEach((w, i) => w.on('heartbeat', () => { beats[i]++ }))
  await waitFor(() => beats.every(n => n >= 3))

  t.equal(cleaned.length, 1, 'one clean-up')
  t.match(cleaned[0].job, { id: jobId, state: 'interrupted', instanceId: childInstance, payload: { multipartUploadId: 'u-1' } })
  t.match(await survivors[0].queue.get(jobId), { state: 'interrupted', instanceId: childInstance, error: { code: 'INTERRUPTED' } })
  t.equal((await cluster.psql(`SELECT cleaner_id = '${cleaned[0].by}' AND cleaned_at IS NOT NULL FROM pgkeep.jobs WHERE id = '${jobId}'`, 'catalog_jobs_lease_kill')).trim(), 't')
})

t.test('a clean-up hook that throws is retried by a later sweep, and the job is marked INTERRUPTED only once', async t => {
  const target = await catalogTarget(cluster, 'catalog_jobs_lease_retry')
  const [db] = await openInstances(target, 1)
  let tries = 0
  const w = await JobWorker.start(db, {
    version: 'test', concurrency: 1, worker: false, timings,
    runner: async () => {},
    onInterrupted: async () => { if (++tries === 1) throw new Error('bucket unreachable') },
  })
  t.teardown(async () => { await w.close(); await db.close() })
  // a job claimed by an instance that is already gone: its lease is in the past
  await w.queue.enqueue({ id: 'orphan', kind: 'drill' })
  t.equal((await w.queue.claim('gone-host-1-abcdef', 1, 0)).length, 1)
  const interrupted: string[] = []
  w.on('interrupted', job => interrupted.push(job.id))
  await waitFor(() => interrupted.length === 1)
  t.equal(tries, 2)
  t.match(await w.queue.get('orphan'), { state: 'interrupted', instanceId: 'gone-host-1-abcdef', attempt: 1 })
})

t.test('a worker whose lease was taken away (marked interrupted elsewhere) has its runner aborted and cannot overwrite the end', async t => {
  const target = await catalogTarget(cluster, 'catalog_jobs_lease_lost')
  const [db, other] = await openInstances(target, 2)
  let reason: unknown
  const w = await JobWorker.start(db, {
    version: 'test', concurrency: 1, timings,
    runner: async (_job, signal) => {
      await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
      reason = signal.reason
    },
  })
  t.teardown(async () => { await w.close(); await db.close(); await other.close() })
  const finished = new Promise<{ recorded: boolean }>(resolve => w.once('finished', resolve))
  await w.queue.enqueue({ id: 'stolen', kind: 'backup' })
  await waitFor(() => w.running.length === 1)
  // as if this instance had been cut off from the catalog for longer than its lease and another swept it
  await other.query("UPDATE pgkeep.jobs SET state = 'interrupted', cleaner_id = 'elsewhere' WHERE id = 'stolen'")
  t.equal((await finished).recorded, false)
  t.match(reason, { code: 'INTERRUPTED', message: /lost the job's lease/ })
  t.match(await w.queue.get('stolen'), { state: 'interrupted' })
})
