import type { Test } from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import type { Registry } from '../../server/engine/store/registry.ts'
import { makeBackup, storeCompleted } from '../engine/store/fixtures.ts'
import { waitUntil } from '../helpers/service.ts'

/** A fresh, empty catalog of one kind, on which any number of Registry views (separate processes or instances) open. */
export interface CatalogKit {
  /** the catalog's backups dir (manifests and data files of storeCompleted go there) */
  backupDir: string
  /** another view on the same catalog, closed at the test's end */
  open: () => Promise<Registry>
}

export interface RegistryBackendUnderTest {
  name: string
  fresh: (t: Test) => Promise<CatalogKit>
  /** a view hears of other views' writes by itself (the catalog's NOTIFY); otherwise at reload() (the file's poll) */
  pushes: boolean
}

/** The behaviour every registry backend owes the engine: one suite, run over the file and the PostgreSQL catalog. */
export function registryConformance (t: Test, backend: RegistryBackendUnderTest): void {
  const { fresh } = backend

  t.test(`${backend.name}: an empty catalog; records found by id and by name, newest first, removed`, async t => {
    const kit = await fresh(t)
    const registry = await kit.open()
    t.same(registry.all(), [])
    const older = makeBackup({ createdAt: '2026-01-01T00:00:00.000Z' })
    const newer = makeBackup({ createdAt: '2026-02-01T00:00:00.000Z' })
    const twinA = makeBackup({ id: '01900000-0000-7000-8000-00000000000a', createdAt: '2026-01-15T00:00:00.000Z' })
    const twinB = makeBackup({ id: '01900000-0000-7000-8000-00000000000b', createdAt: '2026-01-15T00:00:00.000Z' })
    for (const b of [twinA, older, newer, twinB]) await registry.put(b)
    t.same(registry.all().map(b => b.id), [newer.id, twinB.id, twinA.id, older.id], 'newest first, then by id')
    t.equal(registry.get(older.id)?.name, older.name)
    t.equal(registry.findByName(newer.name)?.id, newer.id)
    await registry.remove(older.id)
    t.equal(registry.get(older.id), undefined)
    t.equal(registry.findByName(older.name), undefined)
    const reopened = await kit.open()
    t.same(reopened.all().map(b => b.id), [newer.id, twinB.id, twinA.id], 'a new view reads what was stored')
    t.same(reopened.get(newer.id), newer)
  })

  t.test(`${backend.name}: update returns fn's value and clears undefined fields; a throw or an invalid record writes nothing`, async t => {
    const kit = await fresh(t)
    const registry = await kit.open()
    const other = await kit.open()
    const b = makeBackup({ status: 'running', ownerPid: process.pid })
    await registry.put(b)
    const got = await registry.update(all => {
      all.set(b.id, { ...b, status: 'failed', ownerPid: undefined, error: { code: 'PG_DUMP_FAILED', message: 'x' } })
      return 'done'
    })
    t.equal(got, 'done')
    t.notOk('ownerPid' in (registry.get(b.id) as object))
    const extra = makeBackup()
    await t.rejects(registry.update(all => {
      all.set(extra.id, extra)
      all.delete(b.id)
      throw new Error('fn failed')
    }), /fn failed/)
    await t.rejects(registry.update(all => { all.set(b.id, { ...b, status: 'exploded' } as unknown as Backup) }),
      { code: 'INTERNAL', message: /invalid registry record/ })
    t.equal(registry.get(extra.id), undefined, 'the thrown update left the view alone')
    t.equal(registry.get(b.id)?.status, 'failed')
    await other.reload()
    t.same(other.all().map(r => [r.id, r.status]), [[b.id, 'failed']], 'and stored nothing')
    await t.rejects(registry.update(async () => { await registry.put(makeBackup()) }),
      { code: 'INTERNAL', message: /inside another update/ }, 'a nested update fails at once instead of deadlocking')
    await registry.put(extra)
    t.equal(registry.all().length, 2, 'still usable after failed updates')
  })

  t.test(`${backend.name}: two views see each other's writes and deletes`, async t => {
    const kit = await fresh(t)
    const a = await kit.open()
    const b = await kit.open()
    const rec = makeBackup()
    await a.put(rec)
    const seen = async (view: Registry, check: () => boolean, what: string): Promise<void> => {
      if (backend.pushes) await waitUntil(check, 15000, what)
      else {
        await view.reload()
        t.ok(check(), what)
      }
    }
    await seen(b, () => b.get(rec.id)?.id === rec.id, 'b sees a\'s new record')
    await b.update(all => { all.set(rec.id, { ...rec, pinned: true }) })
    await seen(a, () => a.get(rec.id)?.pinned === true, 'a sees b\'s change')
    await b.remove(rec.id)
    await seen(a, () => a.get(rec.id) === undefined && a.findByName(rec.name) === undefined, 'a sees b\'s delete')
    t.same(a.all(), [])
    const x = makeBackup({ name: 'from-a.dump' })
    const y = makeBackup({ name: 'from-b.dump' })
    await a.put(x)
    await b.put(y)
    t.same(b.all().map(r => r.id).sort(), [x.id, y.id].sort(), 'b caught up under the lock before writing, keeping a\'s record')
  })

  t.test(`${backend.name}: concurrent updates from two views lose nothing`, async t => {
    const kit = await fresh(t)
    const a = await kit.open()
    const b = await kit.open()
    const counter = makeBackup({ sizeBytes: 0 })
    await a.put(counter)
    const bump = async (view: Registry, who: string, n: number): Promise<void> => {
      await view.update(all => {
        const c = all.get(counter.id) as Backup
        all.set(counter.id, { ...c, sizeBytes: (c.sizeBytes ?? 0) + 1 })
        const mine = makeBackup({ name: `${who}-${n}.dump` })
        all.set(mine.id, mine)
      })
    }
    const rounds = 15
    await Promise.all([
      ...Array.from({ length: rounds }, async (_, i) => { await bump(a, 'a', i) }),
      ...Array.from({ length: rounds }, async (_, i) => { await bump(b, 'b', i) }),
    ])
    for (const view of [a, b]) {
      await view.reload()
      t.equal(view.get(counter.id)?.sizeBytes, 2 * rounds, 'every increment kept')
      t.equal(view.all().length, 1 + 2 * rounds, 'every record kept')
    }
  })

  t.test(`${backend.name}: reindex rebuilds from the manifests, keeping pins and unfinished records`, async t => {
    const kit = await fresh(t)
    const registry = await kit.open()
    const pinned = await storeCompleted(kit.backupDir)
    const lost = makeBackup()
    const running = makeBackup({ status: 'running', ownerPid: process.pid })
    const fromManifestOnly = await storeCompleted(kit.backupDir)
    await registry.update(all => { for (const b of [{ ...pinned, pinned: true }, lost, running]) all.set(b.id, b) })
    t.equal(await registry.rebuildFromManifests(), 2)
    t.equal(registry.get(pinned.id)?.pinned, true)
    t.equal(registry.get(running.id)?.status, 'running')
    t.equal(registry.get(lost.id), undefined, 'a completed record without its manifest is dropped')
    t.same(registry.get(fromManifestOnly.id), fromManifestOnly)
    const other = await kit.open()
    t.same(other.all().map(b => b.id).sort(), [pinned.id, running.id, fromManifestOnly.id].sort())
  })
}
