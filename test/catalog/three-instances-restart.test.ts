import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { applicationName } from '../../server/engine/dump/dump-job.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import { startCluster, testCluster } from '../helpers/pg-cluster.ts'
import { startS3Peer } from '../helpers/s3-peer.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { call, eventually, startFleet } from './fixtures/instances.ts'

// The catalog database restarts while three `pgkeep serve` processes run jobs from it (issue 14): they reconnect
// by themselves, the dumps that ended during the outage are recorded after it, and the queued jobs run after it.

// the catalog on a server of this test's own, which it stops and starts; the target on the run's cluster
const own = await startCluster()
t.teardown(own.stop)
await own.createDatabase('three_instances_restart_catalog')
const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'three_instances_restart_app'
await createSampleDatabase(cluster, APP, { rows: 50, padding: 10 })
const peer = await startS3Peer(t, { bucket: 'pgkeep-three-restart' })
const fleet = await startFleet(t, {
  catalogCluster: own,
  catalogDatabase: 'three_instances_restart_catalog',
  targetCluster: cluster,
  targetDatabase: APP,
  peer,
  prefix: 'restart',
  env: { PGKEEP_CONCURRENCY: '1' },
})
const admin = fleet.admin
const [A, B, C] = fleet.instances

const list = async (base: string): Promise<Backup[]> => (await call<{ items: Backup[] }>(base, 'GET', '/api/backup/list?pageSize=50', { token: admin })).body.items

t.test('a catalog restart mid-run: the instances reconnect, the running jobs are recorded and the queued ones run after it', async t => {
  // every dump waits on the gate: three run (one per instance) and three wait in the queue
  const gate = await holdDumpGate(cluster, APP)
  t.teardown(() => gate.release())
  const ids: string[] = []
  for (const instance of [A, B, C, A, B, C]) {
    const created = await call<{ backup: Backup }>(instance.url, 'POST', '/api/backup/create', { token: admin, body: { compression: 'none' } })
    t.equal(created.status, 202, `the create on ${instance.label} is accepted`, { body: created.body })
    ids.push(created.body.backup.id)
  }
  const counts = async (): Promise<Record<string, number>> => {
    const seen: Record<string, number> = {}
    for (const b of (await list(A.url)).filter(b => ids.includes(b.id))) seen[b.status] = (seen[b.status] ?? 0) + 1
    return seen
  }
  await eventually(async () => { const c = await counts(); return c.running === 3 && c.queued === 3 }, 30_000, 'three running, three queued')
  const running = (await list(A.url)).filter(b => ids.includes(b.id) && b.status === 'running')

  await own.serverDown!()
  // the running dumps end while the catalog is away: their end waits for it to come back
  await gate.release()
  const dumpsLeft = async (): Promise<number> => Number((await cluster.psql(
    `SELECT count(*) FROM pg_stat_activity WHERE application_name IN (${running.map(b => `'${applicationName(b.id)}'`).join(', ')})`)).trim())
  await eventually(async () => await dumpsLeft() === 0, 30_000, 'the running dumps to end during the outage')
  await own.serverUp!()

  const allEnded = async (base: string): Promise<boolean> => (await list(base)).filter(b => ids.includes(b.id) && ['completed', 'failed', 'cancelled'].includes(b.status)).length === 6
  await eventually(async () => (await allEnded(A.url)) && (await allEnded(B.url)) && (await allEnded(C.url)),
    30_000, 'all six to end after the restart, on every instance').catch(() => {}) // the assertions below say which did not
  for (const instance of fleet.instances) {
    const seen = (await list(instance.url)).filter(b => ids.includes(b.id))
    t.same(seen.map(b => ({ id: b.id, status: b.status, error: b.error })).sort((x, y) => x.id.localeCompare(y.id)),
      [...ids].sort().map(id => ({ id, status: 'completed', error: undefined })), `${instance.label}: no job lost, every one completed`)
  }
  const { rows } = await fleet.catalog.query<{ state: string, n: number }>(
    'SELECT state, count(*)::integer AS n FROM pgkeep.jobs WHERE id = ANY($1::text[]) GROUP BY state', [ids])
  t.same(rows, [{ state: 'done', n: 6 }], 'the queue agrees')

  // each instance still serves and writes through the catalog after its restart
  for (const instance of fleet.instances) {
    const made = await call<{ backup: Backup }>(instance.url, 'POST', '/api/backup/create', { token: admin, body: { schemaOnly: true, compression: 'none' } })
    t.equal(made.status, 202, `${instance.label} takes a create after the restart`)
  }
})
