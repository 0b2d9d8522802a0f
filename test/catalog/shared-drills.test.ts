import t from 'tap'
import { uuidv7 } from 'uuidv7'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { InstanceRegistration } from '../../server/catalog/instances.ts'
import { PgDrillRecords } from '../../server/catalog/pg-drill-records.ts'
import { BackupService } from '../../server/engine/backup-service.ts'
import { drillDatabaseName } from '../../server/engine/drill/drill-job.ts'
import type { DrillRecord } from '../../server/engine/store/drill-records.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { emptyCatalog } from './catalog-helpers.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'shared_drills_app'
const CATALOG = 'shared_drills_catalog'
await createSampleDatabase(cluster, APP, { rows: 10 })
const catalog = await emptyCatalog(cluster, CATALOG)

const databaseExists = async (name: string): Promise<boolean> =>
  (await cluster.psql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`, 'postgres')).trim() === '1'

t.test('a drill running on another host is left alone while its instance heartbeats, and repaired once it is gone', async t => {
  const config = testConfig(cluster, APP, { PGKEEP_CATALOG_URL: cluster.url(CATALOG) })
  t.teardown(config.cleanup)
  const db = await CatalogDb.open(catalog.target)
  t.teardown(async () => { await db.close() })
  const id = uuidv7()
  const scratch = drillDatabaseName(id)
  await cluster.createDatabase(scratch)
  const elsewhere = new InstanceRegistration(db, 'otherhost-4242-abcdef', { version: 'test', worker: true, concurrency: 1 })
  await elsewhere.heartbeat(60_000)
  const record: DrillRecord = {
    id, backupId: uuidv7(), backupName: 'b', target: 'default', database: scratch, server: 'x', status: 'running', checks: [],
    createdBy: 'test', startedAt: new Date().toISOString(),
    // a pid no process has here: on its own host it is alive, and only its instance's heartbeat can say so
    ownerPid: 4_194_000, ownerHost: 'otherhost', instance: 'otherhost-4242-abcdef', scratch: [scratch],
  }
  await new PgDrillRecords(db).put(record)

  const first = await BackupService.open(config, { worker: 'none' })
  await first.close()
  t.match(await new PgDrillRecords(db).get(id), { status: 'running' }, 'its instance is alive: the drill is not touched')
  t.ok(await databaseExists(scratch), 'nor its scratch database')

  await elsewhere.leave()
  const second = await BackupService.open(config, { worker: 'none' })
  await second.close()
  t.match(await new PgDrillRecords(db).get(id), { status: 'failed', error: { code: 'INTERRUPTED' } }, 'its instance is gone: the drill is failed')
  t.notOk(await databaseExists(scratch), 'and its scratch database dropped')
})
