import t from 'tap'
import { build } from '../../helpers/app.ts'
import { holdDumpGate } from '../../helpers/dump-gate.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { waitUntil } from '../../helpers/service.ts'

// With a shared catalog, readiness and /metrics say which instance answered, the jobs it holds and the shared
// queue, and a catalog that fails or stalls fails the `catalog` check instead of hanging or crashing them.

const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'health_catalog_app'
const CATALOG = 'health_catalog_catalog'
await createSampleDatabase(cluster, APP, { rows: 200 })
await cluster.createDatabase(CATALOG)
const config = testConfig(cluster, APP, { PGKEEP_CATALOG_URL: cluster.url(CATALOG), PGKEEP_CONCURRENCY: '1' })
t.teardown(config.cleanup)
const { app, as, service } = await build(t, { ...config, logLevel: 'info' })

const sql = async (q: string): Promise<string> => (await cluster.psql(q, CATALOG)).trim()
const ready = async (): Promise<{ statusCode: number, body: any }> => {
  const res = await as('viewer', { method: 'GET', url: '/api/health/ready' })
  return { statusCode: res.statusCode, body: res.json() }
}
const metrics = async (): Promise<string> => (await app.inject({ method: 'GET', url: '/metrics' })).body
const sample = (text: string, series: string): string | undefined =>
  text.split('\n').find(l => l.startsWith(`${series} `))?.slice(series.length + 1)

t.test('a logged-in ready reply names this instance (as in pgkeep.instances) with no leases and an empty queue; anonymous callers get only ready', async t => {
  const { statusCode, body } = await ready()
  t.equal(statusCode, 200, JSON.stringify(body.reasons))
  t.match(body.instance, { worker: true, concurrency: 1, leases: 0, queue: { queued: 0, running: 0 }, liveInstances: 1 })
  t.equal(body.instance.id, await sql('SELECT id FROM pgkeep.live_instances'), 'the id is the one this instance heartbeats under')
  t.match(body.checks.find((c: { name: string }) => c.name === 'catalog'), { ok: true, message: /1 live instance\b/ })
  const anonymous = await app.inject({ method: 'GET', url: '/api/health/ready' })
  t.same(anonymous.json(), { ready: true }, 'no instance, no checks without a login')
})

t.test('a running job is this instance\'s lease and the queue\'s running job, a second one waits queued: in the ready reply, /metrics and the backup', async t => {
  const gate = await holdDumpGate(cluster, APP)
  t.teardown(gate.release)
  const first = await service.create({ compression: 'none' }, 'test')
  await waitUntil(() => service.get(first.id).status === 'running', 30_000, 'the first backup to run')
  const second = await service.create({ compression: 'none' }, 'test')

  const { body } = await ready()
  t.match(body.instance, { leases: 1, queue: { queued: 1, running: 1 } })
  t.equal(service.get(first.id).instance, body.instance.id, 'the running backup names the instance that runs it')
  const listed = await as('viewer', { method: 'GET', url: '/api/backup/list' })
  t.equal(listed.json().items.find((b: { id: string }) => b.id === first.id).instance, body.instance.id, 'and the API says so')

  const text = await metrics()
  t.equal(sample(text, `pgkeep_instance_info{instance_id="${body.instance.id}"}`), '1')
  t.equal(sample(text, 'pgkeep_instance_leases'), '1')
  t.equal(sample(text, 'pgkeep_queue_jobs{state="queued"}'), '1')
  t.equal(sample(text, 'pgkeep_queue_jobs{state="running"}'), '1')
  t.equal(sample(text, 'pgkeep_live_instances'), '1')
  t.equal(sample(text, 'pgkeep_catalog_up'), '1')

  await gate.release()
  t.equal((await service.waitFor(first.id)).status, 'completed')
  t.equal((await service.waitFor(second.id)).status, 'completed')
  t.equal(service.get(second.id).instance, body.instance.id, 'an ended backup keeps the instance that ran it')
  const after = await ready()
  t.match(after.body.instance, { leases: 0, queue: { queued: 0, running: 0 } })
})

t.test('a catalog that stalls fails the catalog check within its bound and leaves /metrics serving the rest', async t => {
  // the queue's tables locked by an open transaction: a catalog query on them waits until we let go, so only the
  // bound can end it
  const { default: pg } = await import('pg')
  const locker = new pg.Client({ connectionString: cluster.url(CATALOG) })
  await locker.connect()
  t.teardown(async () => { await locker.end().catch(() => {}) })
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE pgkeep.jobs, pgkeep.instances IN ACCESS EXCLUSIVE MODE')

  const [probe, text] = await Promise.all([ready(), metrics()])
  t.equal(probe.statusCode, 503)
  t.same(probe.body.reasons, ['catalog: the catalog did not answer within 5 s'])
  t.equal(probe.body.instance, undefined)
  const anonymous = await app.inject({ method: 'GET', url: '/api/health/ready' })
  t.same(anonymous.json(), { ready: false }, 'anonymous callers are told not ready, and nothing more')
  t.equal(sample(text, 'pgkeep_catalog_up'), '0')
  t.notMatch(text, /^pgkeep_(instance_info|instance_leases|queue_jobs|live_instances)[ {]/m, 'no instance sample: unknown, not zero')
  t.match(text, /^pgkeep_backups\{status="completed"\} 2$/m, 'the other series are still served')

  await locker.query('COMMIT')
  t.equal((await ready()).statusCode, 200, 'ready again once the catalog answers')
})

t.test('a catalog query that fails is a failed catalog check carrying its error; ready again once it works', async t => {
  // the view the instance count is read from, gone for a moment: the real query fails with PostgreSQL's own words
  await sql('ALTER VIEW pgkeep.live_instances RENAME TO live_instances_away')
  t.teardown(() => sql('ALTER VIEW IF EXISTS pgkeep.live_instances_away RENAME TO live_instances'))
  const { statusCode, body } = await ready()
  t.equal(statusCode, 503)
  t.same(body.reasons, ['catalog: relation "pgkeep.live_instances" does not exist'])
  t.equal(body.instance, undefined)
  t.equal(sample(await metrics(), 'pgkeep_catalog_up'), '0')
  await sql('ALTER VIEW pgkeep.live_instances_away RENAME TO live_instances')
  t.equal((await ready()).statusCode, 200)
  t.equal(sample(await metrics(), 'pgkeep_catalog_up'), '1')
})

t.test('a catalog that refuses connections: readiness says not ready, to a logged-in caller too (whose token it cannot check), never a 500', async t => {
  await cluster.psql(`ALTER DATABASE ${CATALOG} ALLOW_CONNECTIONS false`, 'postgres')
  t.teardown(() => cluster.psql(`ALTER DATABASE ${CATALOG} ALLOW_CONNECTIONS true`, 'postgres'))
  await cluster.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${CATALOG}' AND pid <> pg_backend_pid()`, 'postgres')
  const connected = async (): Promise<number> => Number((await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${CATALOG}'`, 'postgres')).trim())
  await waitUntil(async () => await connected() === 0, 15_000, 'the catalog connections to be gone')

  const { statusCode, body } = await ready()
  t.equal(statusCode, 503)
  t.same(body, { ready: false }, 'credentials that cannot be checked get what an anonymous caller gets')
  const anonymous = await app.inject({ method: 'GET', url: '/api/health/ready' })
  t.same([anonymous.statusCode, anonymous.json()], [503, { ready: false }])
  const text = await metrics()
  t.equal(sample(text, 'pgkeep_catalog_up'), '0')
  t.match(text, /^pgkeep_backups\{status="completed"\} 2$/m, 'the other series are still served')

  await cluster.psql(`ALTER DATABASE ${CATALOG} ALLOW_CONNECTIONS true`, 'postgres')
  await waitUntil(async () => (await ready()).statusCode === 200, 30_000, 'readiness to come back with the catalog')
  t.pass('ready again once the catalog takes connections')
})
