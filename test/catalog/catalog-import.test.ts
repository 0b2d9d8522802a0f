import t from 'tap'
import { uuidv7 } from 'uuidv7'
import { dispatch } from '../../server/cli/main.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { PgDrillRecords } from '../../server/catalog/pg-drill-records.ts'
import { DrillRecords, type DrillRecord } from '../../server/engine/store/drill-records.ts'
import { Registry } from '../../server/engine/store/registry.ts'
import { UsersStore } from '../../server/auth/users-store.ts'
import { makeBackup, tempDir } from '../engine/store/fixtures.ts'
import { memoryIO } from '../cli/cli-runner.ts'
import { testCluster } from '../helpers/pg-cluster.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

function drill (over: Partial<DrillRecord> = {}): DrillRecord {
  const id = uuidv7()
  return {
    id, backupId: uuidv7(), backupName: 'x.dump', target: 'default', database: `pgkeep_drill_${id.slice(-12)}`, server: '127.0.0.1:5432',
    status: 'passed', checks: [], createdBy: 'test', startedAt: new Date().toISOString(), scratch: [], ...over,
  } as DrillRecord
}

/** A file catalog as a pgkeep without PGKEEP_CATALOG_URL leaves it: plain backups, a failed one, a set of two, drills. */
async function fileCatalog (backupDir: string): Promise<{ backupIds: string[], drillIds: string[] }> {
  const registry = await Registry.open(backupDir)
  const set = { id: uuidv7(), name: 'nightly-set' }
  const backups = [
    makeBackup({ createdAt: '2026-01-01T00:00:00.000Z' }),
    makeBackup({ createdAt: '2026-01-02T00:00:00.000Z', pinned: true }),
    makeBackup({ status: 'failed', error: { code: 'PG_DUMP_FAILED', message: 'no' } }),
    makeBackup({ name: 'nightly-set-app.dump', set: { ...set, weightBytes: 100 } }),
    makeBackup({ name: 'nightly-set-shop.dump', set: { ...set, weightBytes: 300 } }),
  ]
  await registry.update(all => { for (const b of backups) all.set(b.id, b) })
  const drills = [drill(), drill({ status: 'failed', error: { code: 'PG_RESTORE_FAILED', message: 'x' } })]
  const store = new DrillRecords(backupDir)
  for (const d of drills) await store.put(d)
  return { backupIds: backups.map(b => b.id), drillIds: drills.map(d => d.id) }
}

t.test('catalog import moves a file catalog into PostgreSQL once: a dry run writes nothing, a rerun imports nothing new', async t => {
  const backupDir = tempDir(t)
  const { backupIds, drillIds } = await fileCatalog(backupDir)
  await new UsersStore(backupDir).add('alice', 'admin', 'Correct-Horse-9-battery')
  await cluster.createDatabase('catalog_import_one')
  const env = { PATH: process.env.PATH, PGKEEP_BACKUP_DIR: backupDir, PGKEEP_CATALOG_URL: cluster.url('catalog_import_one') }
  const count = async (table: string): Promise<string> => (await cluster.psql(`SELECT count(*) FROM pgkeep.${table}`, 'catalog_import_one')).trim()

  const dry = memoryIO(env)
  t.equal(await dispatch(['catalog', 'import', '--dry-run'], dry), 0, dry.err())
  t.match(dry.out(), /^backups: would import 5, skipped 0/m)
  t.match(dry.out(), /^drills: would import 2, skipped 0/m)
  t.match(dry.out(), /nothing was written/)
  t.equal(await count('backups'), '0', 'the dry run wrote no backup')
  t.equal(await count('drills'), '0', 'nor any drill')

  const real = memoryIO(env)
  t.equal(await dispatch(['catalog', 'import'], real), 0, real.err())
  t.match(real.out(), /^backups: imported 5, skipped 0/m)
  t.match(real.out(), /^drills: imported 2, skipped 0/m)
  t.match(real.out(), /^users: imported 1, skipped 0/m)
  t.match(real.out(), /8 records imported into the catalog/)

  const db = await CatalogDb.open({ name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'catalog_import_one' })
  t.teardown(() => db.close())
  const registry = await Registry.open(tempDir(t), { catalog: db })
  t.teardown(() => registry.close())
  const file = await Registry.open(backupDir)
  t.same(registry.all(), file.all(), 'every record as it was, in the same order')
  t.same(registry.all().filter(b => b.set !== undefined).map(b => b.name).sort(), ['nightly-set-app.dump', 'nightly-set-shop.dump'])
  t.same((await new PgDrillRecords(db).all()).map(d => d.id).sort(), drillIds.sort())
  t.equal(backupIds.length, 5)

  const again = memoryIO(env)
  t.equal(await dispatch(['catalog', 'import', '--json'], again), 0, again.err())
  t.same(JSON.parse(again.out()).results, [
    { kind: 'backups', imported: 0, skipped: 5 }, { kind: 'drills', imported: 0, skipped: 2 }, { kind: 'users', imported: 0, skipped: 1 },
    { kind: 'tokens', imported: 0, skipped: 0 }, { kind: 'audit', imported: 0, skipped: 0 }, { kind: 'schedules', imported: 0, skipped: 0 },
  ])
  const words = memoryIO(env)
  await dispatch(['catalog', 'import'], words)
  t.match(words.out(), /nothing new to import/)
  t.equal(await count('backups'), '5')
})

t.test('catalog import without a catalog URL exits 2 with one line', async t => {
  const io = memoryIO({ PATH: process.env.PATH, PGKEEP_BACKUP_DIR: tempDir(t) })
  t.equal(await dispatch(['catalog', 'import'], io), 2)
  t.equal(io.err(), 'pgkeep: CONFIG_INVALID: catalog import: no PostgreSQL catalog configured; set PGKEEP_CATALOG_URL (or catalog in the config file)\n')
  t.equal(io.out(), '')
  const bad = memoryIO({ PATH: process.env.PATH, PGKEEP_BACKUP_DIR: tempDir(t) })
  t.equal(await dispatch(['catalog', 'export'], bad), 2)
  t.match(bad.err(), /unknown subcommand "export"/)
})

t.test('drill records in the catalog: put, update, get, newest first, the history pruned as in the file', async t => {
  await cluster.createDatabase('catalog_import_drills')
  const db = await CatalogDb.open({ name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'catalog_import_drills' })
  t.teardown(() => db.close())
  const store = new PgDrillRecords(db)
  const old = drill({ startedAt: '2026-01-01T00:00:00.000Z' })
  const running = drill({ status: 'running', startedAt: '2026-01-02T00:00:00.000Z' })
  await store.put(old)
  await store.put(running)
  t.same((await store.all()).map(d => d.id), [running.id, old.id])
  await store.update(all => { all.set(running.id, { ...running, status: 'passed' }) })
  t.equal((await store.get(running.id))?.status, 'passed')
  await t.rejects(store.update(() => { throw new Error('fn failed') }), /fn failed/)
  await store.update(all => { for (let i = 0; i < 505; i++) { const d = drill({ startedAt: new Date(Date.UTC(2026, 1, 1) + i * 1000).toISOString() }); all.set(d.id, d) } })
  const kept = await store.all()
  t.equal(kept.length, 500, 'the newest 500 ended drills are kept')
  t.notOk(kept.some(d => d.id === old.id || d.id === running.id), 'the oldest went')
})
