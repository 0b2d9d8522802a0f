import { once } from 'node:events'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { writeFileAtomic } from '../../../server/engine/store/atomic-file.ts'
import { Registry } from '../../../server/engine/store/registry.ts'
import { deadPid, enginePath, liveProcess, makeBackup, spawnScript, storeCompleted, tempDir, waitForLine } from './fixtures.ts'

function openWithWarnings (dir: string): Promise<{ registry: Registry, warnings: string[] }> {
  const warnings: string[] = []
  return Registry.open(dir, { onWarning: m => warnings.push(m) }).then(registry => ({ registry, warnings }))
}

t.test('a fresh backups dir gets a private .pgkeep dir and an empty registry, without warnings', async t => {
  const dir = join(tempDir(t), 'backups')
  const { registry, warnings } = await openWithWarnings(dir)
  t.same(registry.all(), [])
  t.same(warnings, [])
  t.equal(statSync(join(dir, '.pgkeep')).mode & 0o777, 0o700)
  t.same(JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')), { registryVersion: 1, backups: [] })
})

t.test('records are kept newest first and found by id and by name', async t => {
  const dir = tempDir(t)
  const { registry } = await openWithWarnings(dir)
  const older = makeBackup({ createdAt: '2026-01-01T00:00:00.000Z' })
  const newer = makeBackup({ createdAt: '2026-02-01T00:00:00.000Z' })
  await registry.put(older)
  await registry.put(newer)
  t.same(registry.all().map(b => b.id), [newer.id, older.id])
  t.equal(registry.get(older.id)?.name, older.name)
  t.equal(registry.findByName(newer.name)?.id, newer.id)
  await registry.remove(older.id)
  t.equal(registry.get(older.id), undefined)
  t.equal(registry.findByName(older.name), undefined)
  const onDisk = JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8'))
  t.same(onDisk.backups.map((b: Backup) => b.id), [newer.id])
})

t.test('update returns what fn returns, clears undefined fields, and refuses invalid records without writing', async t => {
  const dir = tempDir(t)
  const { registry } = await openWithWarnings(dir)
  const b = makeBackup({ status: 'running', ownerPid: process.pid })
  await registry.put(b)
  const got = await registry.update(all => {
    all.set(b.id, { ...b, status: 'failed', ownerPid: undefined, error: { code: 'PG_DUMP_FAILED', message: 'x' } })
    return 'done'
  })
  t.equal(got, 'done')
  t.notOk('ownerPid' in (registry.get(b.id) as object))
  const before = readFileSync(join(dir, 'registry.json'), 'utf8')
  await t.rejects(registry.update(all => { all.set(b.id, { ...b, status: 'exploded' } as unknown as Backup) }),
    { code: 'INTERNAL', message: /invalid registry record/ })
  await t.rejects(registry.update(() => { throw new Error('fn failed') }), /fn failed/)
  let later: Promise<void> | undefined
  await t.rejects(registry.update(async () => {
    later = new Promise(resolve => setTimeout(resolve, 1)).then(() => registry.put(makeBackup({ name: 'later.dump' })))
    await registry.put(makeBackup())
  }), { code: 'INTERNAL', message: /inside another update/ }, 'a nested update fails at once instead of deadlocking')
  await later
  t.ok(registry.findByName('later.dump'), 'work merely started inside an update may use the registry once it is over')
  await registry.remove(registry.findByName('later.dump')?.id ?? '')
  t.equal(readFileSync(join(dir, 'registry.json'), 'utf8'), before, 'registry.json untouched')
  t.equal(registry.get(b.id)?.status, 'failed')
  await registry.put(makeBackup())
  t.equal(registry.all().length, 2, 'still usable after a failed update')
})

t.test('another registry on the same dir sees writes after reload, and reload skips an unchanged file', async t => {
  const dir = tempDir(t)
  const a = (await openWithWarnings(dir)).registry
  const b = (await openWithWarnings(dir)).registry
  const rec = makeBackup()
  await a.put(rec)
  t.equal(b.get(rec.id), undefined, 'not seen before reload')
  await b.reload()
  t.equal(b.get(rec.id)?.id, rec.id)
  const first = b.get(rec.id)
  await b.reload()
  t.equal(b.get(rec.id), first, 'same objects: the unchanged file was not parsed again')
  await b.update(all => { all.set(rec.id, { ...rec, pinned: true }) })
  await a.update(all => { all.set('x', makeBackup({ name: 'from-a.dump' })) })
  t.equal(a.get(rec.id)?.pinned, true, 'a re-read under the lock before writing, keeping b\'s change')
})

t.test('a deleted registry.json is rebuilt from the manifests with a warning', async t => {
  const dir = tempDir(t)
  const { registry } = await openWithWarnings(dir)
  const one = await storeCompleted(dir, { createdAt: '2026-03-01T10:00:00.000Z' })
  const two = await storeCompleted(dir, { createdAt: '2026-03-02T10:00:00.000Z', format: 'plain', name: 'two.sql' })
  await registry.put(one)
  await registry.put(two)
  rmSync(join(dir, 'registry.json'))
  const reopened = await openWithWarnings(dir)
  t.same(reopened.warnings, ['registry.json was missing; rebuilt from 2 manifests'])
  t.same(reopened.registry.all().map(b => b.id), [two.id, one.id])
  t.same(reopened.registry.get(one.id), one)
})

t.test('a corrupt registry.json is kept aside and rebuilt, salvaging its valid records', async t => {
  const dir = tempDir(t)
  const { registry } = await openWithWarnings(dir)
  const done = await storeCompleted(dir)
  const failed = makeBackup({ status: 'failed', error: { code: 'PG_DUMP_FAILED', message: 'no' } })
  await registry.put(done)
  await registry.put(failed)

  const truncated = readFileSync(join(dir, 'registry.json'), 'utf8').slice(0, 200)
  writeFileSync(join(dir, 'registry.json'), truncated)
  const bad = await openWithWarnings(dir)
  t.match(bad.warnings[0], /^registry\.json was corrupt; rebuilt from 1 manifests \(not valid JSON/)
  t.same(bad.registry.all().map(b => b.id), [done.id], 'the completed backup comes back from its manifest')
  const aside = readdirSync(dir).filter(n => n.startsWith('registry.json.corrupt-'))
  t.equal(aside.length, 1)
  t.equal(readFileSync(join(dir, aside[0]), 'utf8'), truncated, 'the damaged file is kept, byte for byte')

  // A well-formed file with one record of the wrong shape: the valid ones are kept, the bad one is not.
  await bad.registry.put(failed)
  const doc = JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8'))
  doc.backups.push({ id: 'nope', status: 'weird' })
  writeFileSync(join(dir, 'registry.json'), JSON.stringify(doc))
  const shaped = await openWithWarnings(dir)
  t.match(shaped.warnings[0], /^registry\.json was corrupt; rebuilt from 1 manifests \(1 record\(s\) do not match the Backup schema.*2 valid records salvaged/)
  t.same(shaped.registry.all().map(b => b.id).sort(), [done.id, failed.id].sort())

  writeFileSync(join(dir, 'registry.json'), JSON.stringify({ backups: {} }))
  const wrong = await openWithWarnings(dir)
  t.match(wrong.warnings[0], /was corrupt.*not a \{ registryVersion: 1/)
  t.equal(readdirSync(dir).filter(n => n.startsWith('registry.json.corrupt-')).length, 3)
})

t.test('rebuilding from manifests keeps pins, verifications and unfinished records, and skips manifests without data', async t => {
  const dir = tempDir(t)
  const { registry } = await openWithWarnings(dir)
  const pinned = await storeCompleted(dir)
  const gone = await storeCompleted(dir)
  const running = makeBackup({ status: 'running', ownerPid: process.pid })
  const lostManifest = makeBackup()
  const verification = { at: new Date().toISOString(), ok: true, method: 'sha256+pg_restore' }
  await registry.update(all => {
    for (const b of [{ ...pinned, pinned: true, verification }, gone, running, lostManifest]) all.set(b.id, b)
  })
  rmSync(join(dir, gone.name))
  mkdirSync(join(dir, 'junk.manifest.json.d'))
  writeFileSync(join(dir, 'broken.manifest.json'), '{"manifestVersion": 1,')
  const warnings: string[] = []
  const again = await Registry.open(dir, { onWarning: m => warnings.push(m) })
  t.equal(await again.rebuildFromManifests(), 1)
  t.equal(again.get(pinned.id)?.pinned, true)
  t.same(again.get(pinned.id)?.verification, verification)
  t.equal(again.get(running.id)?.status, 'running')
  t.equal(again.get(gone.id), undefined, 'data file deleted by hand: not resurrected')
  t.equal(again.get(lostManifest.id), undefined, 'a completed record without manifest is dropped')
  t.ok(warnings.some(w => /broken\.manifest\.json is not valid JSON/.test(w)), 'broken manifest reported')
  t.ok(warnings.some(w => w.includes(`its backup ${gone.name} is missing`)), 'missing data reported')
})

t.test('a writer killed with SIGKILL mid-write never leaves a truncated registry.json, and its leftovers are cleaned', async t => {
  const dir = tempDir(t)
  const script = join(dir, 'writer.mts')
  writeFileSync(script, `
    import { Registry } from ${JSON.stringify(enginePath('registry.ts'))}
    import { makeBackup } from ${JSON.stringify(join(import.meta.dirname, 'fixtures.ts'))}
    const registry = await Registry.open(process.argv[2])
    const first = makeBackup({ sizeBytes: 0 })
    // ~150 KB per write, so a kill is likely to land while bytes are being written
    await registry.update(all => { all.set(first.id, first); for (let i = 0; i < 200; i++) { const b = makeBackup(); all.set(b.id, b) } })
    console.log('ready')
    for (let i = 1; ; i++) await registry.update(all => { all.set(first.id, { ...all.get(first.id), sizeBytes: i }) })
  `)
  const writer = spawnScript(script, [dir])
  t.teardown(() => { writer.kill('SIGKILL') })
  await waitForLine(writer, /^ready$/)

  const seen = new Set<number>()
  let reads = 0
  while (seen.size < 8) {
    const doc = JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8'))
    t.equal(doc.backups.length, 201, `read ${++reads} parses completely`, { diagnostic: false })
    seen.add(Math.max(...doc.backups.map((b: Backup) => b.sizeBytes ?? 0)))
    await new Promise(resolve => setImmediate(resolve))
  }
  writer.kill('SIGKILL')
  await once(writer, 'exit')

  t.equal(JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')).backups.length, 201, 'parseable after the kill')
  const { registry, warnings } = await openWithWarnings(dir)
  t.same(warnings, [])
  t.equal(registry.all().length, 201)
  t.same(readdirSync(dir).filter(n => n.endsWith('.tmp')), [], 'temp files of the dead writer removed')
  await registry.put(makeBackup())
  t.equal(registry.all().length, 202, 'the dead writer\'s lock, if any, was taken over')
})

t.test('opening removes the temp files of writers that died, never those of live ones', async t => {
  const dir = tempDir(t)
  const dead = await deadPid()
  const live = liveProcess(t).pid
  const names = [
    `.registry.json.${dead}.0123456789ab.tmp`,
    `.x.dump.manifest.json.${dead}.ba9876543210.tmp`,
    `.registry.json.${live}.0123456789ab.tmp`,
    'unrelated.tmp',
  ]
  for (const n of names) writeFileSync(join(dir, n), '{')
  await openWithWarnings(dir)
  t.same(readdirSync(dir).filter(n => n.endsWith('.tmp')).sort(), [names[2], 'unrelated.tmp'].sort())
})

t.test('writeFileAtomic sets the mode and removes its temp file when the rename fails', async t => {
  const dir = tempDir(t)
  await writeFileAtomic(join(dir, 'a.json'), '{}', 0o640)
  t.equal(statSync(join(dir, 'a.json')).mode & 0o777, 0o640)
  mkdirSync(join(dir, 'taken'))
  writeFileSync(join(dir, 'taken', 'x'), '')
  await t.rejects(writeFileAtomic(join(dir, 'taken'), 'data'))
  t.same(readdirSync(dir).sort(), ['a.json', 'taken'])
})
