import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { hashTree, readManifest, writeManifest } from '../../../server/engine/store/manifest.ts'
import { Registry } from '../../../server/engine/store/registry.ts'
import { planRetention } from '../../../server/engine/store/retention.ts'
import { storeCompleted, tempDir } from './fixtures.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'

const manifestOf = async (dir: string, b: Backup): Promise<Backup> => (await readManifest(new LocalStorage(dir), b.name)).backup
const verification = (at: string, ok = true): NonNullable<Backup['verification']> => ({ at, ok, method: 'sha256+pg_restore' })

t.test('a pin only in the manifest (a crash after the manifest write, before the registry write) survives reindex and a lost registry', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  const b = await storeCompleted(dir)
  await registry.put(b)
  // what the pin wrote before the process died: the manifest has the pin, registry.json not yet
  await writeManifest(new LocalStorage(dir), { ...b, pinned: true, verification: verification('2026-11-02T00:00:00.000Z') }, await hashTree(dir, b.name))
  t.equal(await registry.rebuildFromManifests(), 1)
  t.equal(registry.get(b.id)?.pinned, true, 'reindex keeps the pin the registry had not seen')
  t.same(registry.get(b.id)?.verification, verification('2026-11-02T00:00:00.000Z'))

  rmSync(join(dir, 'registry.json'))
  const reopened = await Registry.open(dir)
  t.equal(reopened.get(b.id)?.pinned, true, 'rebuilt from the manifest: still pinned')
  t.same(planRetention([reopened.get(b.id)!, await storeCompleted(dir)], { keepLast: 1 }, new Date()).delete, [], 'retention keeps it')
})

t.test('a pin only in registry.json (a manifest written before manifests kept pins) is copied to the manifest by reindex', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  const b = await storeCompleted(dir)
  await registry.put({ ...b, pinned: true, verification: verification('2026-11-05T00:00:00.000Z', false) })
  t.equal((await manifestOf(dir, b)).pinned, false, 'the old manifest has no pin')
  await registry.rebuildFromManifests()
  t.equal(registry.get(b.id)?.pinned, true)
  const m = await manifestOf(dir, b)
  t.equal(m.pinned, true, 'the manifest now holds the pin')
  t.same(m.verification, verification('2026-11-05T00:00:00.000Z', false), 'and the verification')
  t.equal(m.sha256, b.sha256, 'the file facts are unchanged')

  rmSync(join(dir, 'registry.json'))
  const reopened = await Registry.open(dir)
  t.equal(reopened.get(b.id)?.pinned, true)
  t.same(reopened.get(b.id)?.verification, verification('2026-11-05T00:00:00.000Z', false))
})

t.test('when registry and manifest disagree on the verification, the newer one wins', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  const b = await storeCompleted(dir, { verification: verification('2026-11-09T00:00:00.000Z', false) })
  await registry.put({ ...b, verification: verification('2026-11-01T00:00:00.000Z') })
  await registry.rebuildFromManifests()
  t.same(registry.get(b.id)?.verification, verification('2026-11-09T00:00:00.000Z', false))
  t.notOk(readFileSync(join(dir, 'registry.json'), 'utf8').includes('2026-11-01T00:00:00.000Z'))
})
