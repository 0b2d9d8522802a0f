import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { openService, waitUntil } from '../helpers/service.ts'
import { memoryIO } from '../cli/cli-runner.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'catalog_shared_app', { rows: 200 })
await cluster.createDatabase('catalog_shared_catalog')

const catalogConnections = async (): Promise<number> => Number((await cluster.psql(
  "SELECT count(*) FROM pg_stat_activity WHERE datname = 'catalog_shared_catalog' AND application_name = 'pgkeep-catalog'", 'postgres')).trim())

t.test('two services on one catalog and one storage dir see each other\'s backups; the CLI sees them too', async t => {
  const config = testConfig(cluster, 'catalog_shared_app', { PGKEEP_CATALOG_URL: cluster.url('catalog_shared_catalog') })
  t.teardown(config.cleanup)
  const a = await openService(config)
  const b = await openService(config)
  let open = [a, b]
  t.teardown(async () => { for (const s of open) await s.close() })

  const queued = await a.create({}, 'test')
  const done = await a.waitFor(queued.id)
  t.equal(done.status, 'completed')
  await waitUntil(() => b.registry.get(done.id)?.status === 'completed', 15000, 'b to see a\'s backup completed')
  t.same(b.get(done.id), a.get(done.id))
  t.same(b.list().items.map(x => x.id), [done.id])
  t.equal(b.resolve(done.name).id, done.id)
  t.equal((await b.validate(done.id)).verification?.ok, true, 'b reads a\'s files through the shared record')
  t.notOk(existsSync(join(config.backupDir, 'registry.json')), 'the catalog holds the records, not registry.json')

  const io = memoryIO({
    PATH: process.env.PATH, DATABASE_URL: cluster.url('catalog_shared_app'), PGKEEP_BACKUP_DIR: config.backupDir,
    PGKEEP_PG_BIN_DIR: cluster.binDir, PGKEEP_CATALOG_URL: cluster.url('catalog_shared_catalog'),
  })
  t.equal(await dispatch(['list', '--json'], io), 0, io.err())
  t.same(JSON.parse(io.out()).items.map((x: { id: string }) => x.id), [done.id], 'pgkeep list reads the catalog')

  await b.pin(done.id, true)
  await waitUntil(() => a.get(done.id).pinned, 15000, 'a to see b\'s pin')
  await b.delete(done.id)
  await waitUntil(() => a.registry.get(done.id) === undefined, 15000, 'a to see b\'s delete')
  t.equal(a.list().total, 0)
  t.notOk(existsSync(join(config.backupDir, done.name)), 'the files went with it')

  await a.close()
  await b.close()
  open = []
  // a backend leaves pg_stat_activity a moment after its client hung up
  await waitUntil(async () => await catalogConnections() === 0, 15000, 'closing the services to close their catalog connections')
  t.pass('closing the services closed their catalog connections')
})
