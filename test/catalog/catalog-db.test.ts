import t from 'tap'
import type { Target } from '../../server/config.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { migrate } from '../../server/catalog/migrate.ts'
import { MIGRATIONS } from '../../server/catalog/migrations/index.ts'
import { testCluster } from '../helpers/pg-cluster.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

async function catalogTarget (database: string): Promise<Target> {
  await cluster.createDatabase(database)
  return { name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, database, password: cluster.password }
}

t.test('three instances opening one empty catalog together run each migration exactly once', async t => {
  const target = await catalogTarget('catalog_db_migrate')
  const dbs = await Promise.all([1, 2, 3].map(async () => await CatalogDb.open(target)))
  t.teardown(async () => { for (const db of dbs) await db.close() })
  const versions = await cluster.psql('SELECT version FROM pgkeep.schema_version ORDER BY version', 'catalog_db_migrate')
  t.equal(versions.trim(), MIGRATIONS.map(m => String(m.version)).join('\n'))
  t.equal((await cluster.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pgkeep' AND table_name = 'instances'", 'catalog_db_migrate')).trim(), '1')
})

t.test('a catalog migrated by a newer pgkeep is refused with the versions named, and left as it was', async t => {
  const target = await catalogTarget('catalog_db_newer')
  const db = await CatalogDb.open(target)
  const future = MIGRATIONS.length + 1
  await db.query("INSERT INTO pgkeep.schema_version (version, name) VALUES ($1, 'from the future')", [future])
  await db.close()
  await t.rejects(CatalogDb.open(target), { code: 'INVALID_STATE', message: new RegExp(`schema version ${future}, newer than this pgkeep knows \\(${MIGRATIONS.length}\\)`) })
  t.equal((await cluster.psql('SELECT count(*) FROM pgkeep.schema_version', 'catalog_db_newer')).trim(), String(future))
})

t.test('a failing migration rolls back with the transaction: no half-made table, no version row', async t => {
  const target = await catalogTarget('catalog_db_failing')
  const db = await CatalogDb.open(target)
  t.teardown(() => db.close())
  const broken = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE pgkeep.half (id int); SELECT 1/0' }]
  await t.rejects(db.transaction(client => migrate(client, broken)), { code: '22012' })
  t.equal((await cluster.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pgkeep' AND table_name = 'half'", 'catalog_db_failing')).trim(), '0')
  t.equal((await cluster.psql('SELECT max(version) FROM pgkeep.schema_version', 'catalog_db_failing')).trim(), String(MIGRATIONS.length))
})

t.test('notifications reach listeners; a listener connection killed by the server comes back and says so', async t => {
  const target = await catalogTarget('catalog_db_listen')
  const db = await CatalogDb.open(target)
  t.teardown(() => db.close())
  const heard: string[] = []
  await db.listen('pgkeep_test', p => heard.push(p))
  await db.notify('pgkeep_test', 'one')
  while (heard.length < 1) await new Promise(resolve => setTimeout(resolve, 20))
  t.same(heard, ['one'])

  const reconnected = new Promise<void>(resolve => { db.onReconnect(resolve) })
  await cluster.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'catalog_db_listen' AND application_name = 'pgkeep-catalog' AND query LIKE 'LISTEN%'`, 'postgres')
  await reconnected
  await db.notify('pgkeep_test', 'two')
  while (heard.length < 2) await new Promise(resolve => setTimeout(resolve, 20))
  t.same(heard, ['one', 'two'])
})

t.test('a catalog that cannot be reached is a connection error naming the catalog, never its password', async t => {
  const target = { ...await catalogTarget('catalog_db_unreachable'), port: 1, password: 'Never-Shown-9' }
  const err = await CatalogDb.open(target).catch((e: Error) => e)
  t.match(err, { code: 'PG_CONNECTION_FAILED', message: /target "catalog"/ })
  t.notMatch(String((err as Error).message), /Never-Shown-9/)
})

t.test('a catalog database that stops accepting connections (55000) is a connection error, not an SQL one passed through', async t => {
  const target = await catalogTarget('catalog_db_closed')
  const db = await CatalogDb.open(target)
  t.teardown(async () => {
    await cluster.psql('ALTER DATABASE catalog_db_closed ALLOW_CONNECTIONS true', 'postgres')
    await db.close()
  })
  await cluster.psql("ALTER DATABASE catalog_db_closed ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'catalog_db_closed' AND pid <> pg_backend_pid()", 'postgres')
  await t.rejects(db.query('SELECT 1'), { code: 'PG_CONNECTION_FAILED' })
})
