import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { BackupService } from '../../server/engine/backup-service.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import { startCluster, testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { FAST_RETRY, waitUntil } from '../helpers/service.ts'

// the catalog on a cluster of its own (this file stops and starts it); the database backed up on the run's
const catalogCluster = await startCluster()
t.teardown(catalogCluster.stop)
const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'shared_restart_app'
await createSampleDatabase(cluster, APP, { rows: 500 })
await catalogCluster.createDatabase('catalog')

t.test('the catalog restarts while a dump runs and others wait: the dump\'s end is recorded once it is back, and every queued backup runs', async t => {
  const config = testConfig(cluster, APP, { PGKEEP_CATALOG_URL: catalogCluster.url('catalog'), PGKEEP_LEASE_SECONDS: '3' })
  t.teardown(config.cleanup)
  const gate = await holdDumpGate(cluster, APP)
  t.teardown(async () => { await gate.release() })
  const api = await BackupService.open(config, { retry: FAST_RETRY, worker: 'none' })
  const worker = await BackupService.open(config, { retry: FAST_RETRY, worker: 'all' })
  t.teardown(async () => { await api.close(); await worker.close() })

  const first = await api.create({}, 'test')
  await waitUntil(() => worker.registry.get(first.id)?.status === 'running', 15000, 'the dump to start')
  const queued = [await api.create({}, 'test'), await api.create({}, 'test')]
  const ends = [first, ...queued].map(async b => await api.waitFor(b.id))

  await catalogCluster.serverDown!()
  // the dump finishes while the catalog is down, and the outage outlasts a lease
  await gate.release()
  await new Promise(resolve => setTimeout(resolve, 4500))
  await catalogCluster.serverUp!()

  const ended: Backup[] = await Promise.all(ends)
  t.same(ended.map(b => b.status), ['completed', 'completed', 'completed'], 'nothing was lost or failed for the outage')
  t.ok(ended.every(b => b.instance === ended[0].instance), 'all ran on the one worker instance')
  const rows = await catalogCluster.psql(`SELECT state, count(*) FROM pgkeep.jobs GROUP BY state ORDER BY state`, 'catalog')
  t.equal(rows.trim(), 'done|3', 'three jobs done, none interrupted by the outage')
  t.equal((await api.validate(first.id)).verification?.ok, true)
})
