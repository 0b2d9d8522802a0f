import t, { type Test } from 'tap'
import type { Target } from '../../server/config.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { Registry } from '../../server/engine/store/registry.ts'
import { makeBackup, storeCompleted, tempDir } from '../engine/store/fixtures.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { waitUntil } from '../helpers/service.ts'
import { registryConformance } from './registry-conformance.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

let databases = 0
/** A fresh catalog database, named for this file; each view opens its own CatalogDb, as separate instances would. */
async function freshCatalog (t: Test): Promise<{ database: string, target: Target, backupDir: string, open: (opts?: { onWarning?: (m: string) => void }) => Promise<{ registry: Registry, db: CatalogDb }> }> {
  const database = `catalog_registry_pg_${++databases}`
  await cluster.createDatabase(database)
  const target: Target = { name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, database, password: cluster.password }
  const backupDir = tempDir(t)
  const open = async (opts: { onWarning?: (m: string) => void } = {}): Promise<{ registry: Registry, db: CatalogDb }> => {
    const db = await CatalogDb.open(target)
    const registry = await Registry.open(backupDir, { catalog: db, onWarning: opts.onWarning })
    t.teardown(async () => { await registry.close(); await db.close() })
    return { registry, db }
  }
  return { database, target, backupDir, open }
}

registryConformance(t, {
  name: 'postgresql',
  pushes: true,
  fresh: async t => {
    const c = await freshCatalog(t)
    return { backupDir: c.backupDir, open: async () => (await c.open()).registry }
  },
})

t.test('an update writes only the rows it changed, all under one new change_seq', async t => {
  const c = await freshCatalog(t)
  const { registry } = await c.open()
  await registry.update(all => { for (let i = 0; i < 300; i++) { const b = makeBackup(); all.set(b.id, b) } })
  const one = registry.all()[17]
  const gone = registry.all()[42]
  await registry.update(all => { all.set(one.id, { ...one, pinned: true }); all.delete(gone.id) })
  const rows = await cluster.psql(`SELECT id, record IS NULL FROM pgkeep.backups WHERE change_seq = (SELECT max(change_seq) FROM pgkeep.backups) ORDER BY 2`, c.database)
  t.same(rows.trim().split('\n').sort(), [`${one.id}|f`, `${gone.id}|t`].sort(), 'the changed row and the tombstone of the deleted one')
  t.equal((await cluster.psql('SELECT count(DISTINCT change_seq) FROM pgkeep.backups', c.database)).trim(), '2')
})

t.test('a name another live backup has is a CONFLICT; the name of a deleted one can be used again', async t => {
  const c = await freshCatalog(t)
  const { registry } = await c.open()
  const first = makeBackup({ name: 'nightly.dump' })
  await registry.put(first)
  await t.rejects(registry.put(makeBackup({ name: 'nightly.dump' })), { code: 'CONFLICT', message: /a backup named nightly\.dump already exists/ })
  t.equal(registry.all().length, 1)
  await registry.remove(first.id)
  const again = makeBackup({ name: 'nightly.dump' })
  await registry.put(again)
  t.equal(registry.findByName('nightly.dump')?.id, again.id)
})

t.test('a view whose LISTEN connection was cut catches up on what it missed once it is back', async t => {
  const c = await freshCatalog(t)
  const { registry: a, db: dbA } = await c.open()
  const { registry: b } = await c.open()
  await b.put(makeBackup())
  await waitUntil(() => a.all().length === 1, 15000, 'a hears b\'s first write')
  let reconnects = 0
  dbA.onReconnect(() => { reconnects++ })
  // no new connection to the catalog database until the write below is done: a's listener stays away meanwhile
  // (b writes over the connection its pool already holds)
  await cluster.psql(`ALTER DATABASE ${c.database} ALLOW_CONNECTIONS false`, 'postgres')
  try {
    await cluster.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${c.database}' AND query LIKE 'LISTEN%'`, 'postgres')
    const missed = makeBackup({ name: 'sent-while-a-was-deaf.dump' })
    await b.put(missed)
    t.equal(a.get(missed.id), undefined, 'a could not hear it')
  } finally {
    await cluster.psql(`ALTER DATABASE ${c.database} ALLOW_CONNECTIONS true`, 'postgres')
  }
  await waitUntil(() => reconnects > 0, 30000, 'a\'s listener to come back')
  await waitUntil(() => a.findByName('sent-while-a-was-deaf.dump') !== undefined, 15000, 'a to catch up after the reconnect')
  t.equal(a.all().length, 2)
})

t.test('a view older than the pruned tombstones reloads everything', async t => {
  const c = await freshCatalog(t)
  const { registry: a } = await c.open()
  const kept = makeBackup()
  const deleted = makeBackup()
  await a.update(all => { all.set(kept.id, kept); all.set(deleted.id, deleted) })
  // another instance deleted it, and its tombstone was pruned before this view heard of it
  await cluster.psql(`DELETE FROM pgkeep.backups WHERE id = '${deleted.id}'; UPDATE pgkeep.backups_horizon SET pruned_through = (SELECT last_value FROM pgkeep.backups_change_seq) + 1; SELECT nextval('pgkeep.backups_change_seq')`, c.database)
  await a.reload()
  t.same(a.all().map(b => b.id), [kept.id])
})

t.test('a catalog that never held a backup is filled from the manifests at its first open, with a warning', async t => {
  const c = await freshCatalog(t)
  const one = await storeCompleted(c.backupDir)
  const two = await storeCompleted(c.backupDir)
  const warnings: string[] = []
  const { registry } = await c.open({ onWarning: m => warnings.push(m) })
  t.same(registry.all().map(b => b.id).sort(), [one.id, two.id].sort())
  t.same(warnings, ['the catalog held no backups; rebuilt from 2 manifests'])
  const later: string[] = []
  await c.open({ onWarning: m => later.push(m) })
  t.same(later, [], 'once filled, opening reads the catalog only')
})
