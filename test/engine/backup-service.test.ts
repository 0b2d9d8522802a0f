import { existsSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { openService } from '../helpers/service.ts'
import type { PgkeepError } from '../../server/errors.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'service_app')

t.test('bad names and options are rejected with INVALID_INPUT and nothing is stored', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const bad: [unknown, string][] = [
    [{ name: '../etc/passwd' }, 'name'],
    [{ name: '.hidden' }, 'name'],
    [{ name: 'a b' }, 'name'],
    [{ name: 'x'.repeat(101) }, 'name'],
    [{ format: 'zip' }, 'format'],
    [{ compression: 'lz4' }, 'compression'],
    [{ compression: 'gzip', level: 12 }, 'level'],
    [{ compression: 'none', level: 3 }, 'level'],
    [{ schemaOnly: true, dataOnly: true }, 'dataOnly'],
    [{ jobs: 4 }, 'jobs'],
    [{ target: 'nope' }, 'target'],
    [{ surprise: 1 }, 'surprise'],
    [{ schemas: 'public' }, 'schemas'],
  ]
  for (const [req, field] of bad) {
    await t.rejects(service.create(req, 'test'), { code: 'INVALID_INPUT' }, JSON.stringify(req))
    try { await service.create(req, 'test') } catch (err) { t.equal((err as PgkeepError).details?.field, field, `field named for ${JSON.stringify(req)}`) }
  }
  t.equal(service.list().total, 0, 'registry unchanged')
  t.same(readdirSync(config.backupDir).filter(f => !f.startsWith('.') && f !== 'registry.json'), [], 'no files written')
})

t.test('a user-given name gets its extension and a duplicate name is a CONFLICT', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const b = await service.create({ name: 'nightly', compression: 'gzip' }, 'test')
  t.equal(b.name, 'nightly.dump.gz')
  t.equal((await service.waitFor(b.id)).status, 'completed')
  await t.rejects(service.create({ name: 'nightly', compression: 'gzip' }, 'test'), { code: 'CONFLICT' })
})

t.test('generated names follow <target>-<database>-<UTC stamp>-<short id>.<ext>', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const b = await service.create({ format: 'plain' }, 'test')
  t.match(b.name, /^default-service_app-\d{8}T\d{6}Z-[0-9a-f]{8}\.sql\.zst$/)
  await service.waitFor(b.id)
})

t.test('concurrent creates respect the queue: one at a time, in order, and a full queue is refused', async t => {
  const config = { ...testConfig(cluster, 'service_app'), concurrency: 1, maxQueue: 3 }
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  let running = 0
  let maxRunning = 0
  const started: string[] = []
  service.on('status', b => {
    if (b.status === 'running') { running++; started.push(b.id); maxRunning = Math.max(maxRunning, running) }
    if (['completed', 'failed', 'cancelled'].includes(b.status)) running--
  })
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push((await service.create({ compression: 'gzip', level: 1 }, 'test')).id)
  await t.rejects(service.create({}, 'test'), { code: 'QUEUE_FULL' }, 'the fifth waits in a full queue')
  const finals = await Promise.all(ids.map(id => service.waitFor(id)))
  t.same(finals.map(b => b.status), ['completed', 'completed', 'completed', 'completed'])
  t.equal(maxRunning, 1, 'never two dumps at once')
  t.same(started, ids, 'started in the order they were created')
})

t.test('cancelling a queued backup dequeues it without running pg_dump', async t => {
  const config = { ...testConfig(cluster, 'service_app'), concurrency: 1 }
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const first = await service.create({ compression: 'zstd', level: 19 }, 'test')
  const second = await service.create({}, 'test')
  const cancelled = await service.cancel(second.id)
  t.equal(cancelled.status, 'cancelled')
  t.notOk(cancelled.startedAt, 'never started')
  t.equal((await service.waitFor(first.id)).status, 'completed')
  await t.rejects(service.cancel(second.id), { code: 'INVALID_STATE' }, 'a terminal backup cannot be cancelled again')
})

t.test('a wrong password fails with PG_AUTH_FAILED and the password appears nowhere', async t => {
  const wrong = 'WrongPassw0rd-zz9'
  const config = testConfig(cluster, 'service_app', { DATABASE_URL: `postgres://postgres:${wrong}@127.0.0.1:${cluster.port}/service_app` })
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const seen: string[] = []
  service.on('log', e => seen.push(e.line))
  service.on('status', b => seen.push(JSON.stringify(b)))
  const b = await service.create({}, 'test')
  const done = await service.waitFor(b.id)
  t.equal(done.status, 'failed')
  t.equal(done.error?.code, 'PG_AUTH_FAILED')
  seen.push(JSON.stringify(done), readFileSync(join(config.backupDir, 'registry.json'), 'utf8'))
  for (const s of seen) t.notOk(s.includes(wrong), 'password absent')
})

t.test('an unreachable server is retried a bounded number of times, then PG_CONNECTION_FAILED', async t => {
  const config = testConfig(cluster, 'service_app', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/service_app' })
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const started = Date.now()
  const done = await service.waitFor((await service.create({}, 'test')).id)
  t.equal(done.status, 'failed')
  t.equal(done.error?.code, 'PG_CONNECTION_FAILED')
  t.ok(Date.now() - started < 10000, 'no retry storm')
})

t.test('the registry is rebuilt from manifests when registry.json is deleted', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  let service = await openService(config)
  const b = await service.waitFor((await service.create({}, 'test')).id)
  await service.close()
  rmSync(join(config.backupDir, 'registry.json'))
  const warnings: string[] = []
  const { BackupService } = await import('../../server/engine/backup-service.ts')
  service = await BackupService.open(config, { logger: { info () {}, error () {}, warn: m => warnings.push(m) } })
  t.teardown(() => service.close())
  t.equal(service.get(b.id).status, 'completed')
  t.equal(service.get(b.id).sha256, b.sha256)
  t.match(warnings.join('\n'), /rebuilt/)
})

t.test('a flipped byte in a completed backup is reported corrupt by validate and the status stays completed', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const b = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  const file = join(config.backupDir, b.name)
  const bytes = readFileSync(file)
  bytes[Math.floor(bytes.length / 2)] ^= 0xff
  writeFileSync(file, bytes)
  const checked = await service.validate(b.id)
  t.equal(checked.verification?.ok, false)
  t.match(checked.verification?.message, /sha256|checksum|mismatch/i)
  t.equal(checked.status, 'completed')
})

t.test('deleting removes the files, the manifest and the entry, and says so', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const b = await service.waitFor((await service.create({}, 'test')).id)
  const deleted: string[] = []
  service.on('deleted', e => deleted.push(e.backupId))
  await service.delete(b.id)
  t.notOk(existsSync(join(config.backupDir, b.name)))
  t.notOk(existsSync(join(config.backupDir, `${b.name}.manifest.json`)))
  await t.rejects(async () => service.get(b.id), { code: 'NOT_FOUND' })
  t.same(deleted, [b.id])
})

t.test('cleanup: the dry run lists exactly what the real run deletes, an empty policy is refused', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push((await service.waitFor((await service.create({ compression: 'gzip', level: 1 }, 'test')).id)).id)
  await service.pin(ids[0], true)
  await t.rejects(service.cleanup({ policy: {} }), { code: 'INVALID_INPUT' })
  const dry = await service.cleanup({ policy: { keepLast: 1 }, dryRun: true })
  t.same(dry.deleted.map(b => b.id).sort(), [ids[1], ids[2]].sort(), 'keeps the newest and the pinned one')
  t.equal(service.list().total, 4, 'dry run deleted nothing')
  const real = await service.cleanup({ policy: { keepLast: 1 } })
  t.same(real.deleted.map(b => b.id).sort(), dry.deleted.map(b => b.id).sort())
  t.same(service.list().items.map(b => b.id).sort(), [ids[0], ids[3]].sort())
})

t.test('a pin and a verification survive losing registry.json: they are in the manifest too, and retention still keeps the pinned backup', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  let service = await openService(config)
  const old = await service.waitFor((await service.create({}, 'test')).id)
  const unpinned = await service.waitFor((await service.create({}, 'test')).id)
  await service.waitFor((await service.create({}, 'test')).id)
  await service.pin(old.id, true)
  await service.pin(unpinned.id, true)
  await service.pin(unpinned.id, false)
  const checked = await service.validate(old.id)
  await service.close()

  rmSync(join(config.backupDir, 'registry.json'))
  service = await openService(config)
  t.teardown(() => service.close())
  t.equal(service.get(old.id).pinned, true, 'still pinned after the rebuild')
  t.same(service.get(old.id).verification, checked.verification, 'the verification is back too')
  t.equal(service.get(unpinned.id).pinned, false, 'an unpin is not undone by the rebuild')
  const result = await service.cleanup({ policy: { keepLast: 1 } })
  t.same(result.deleted.map(b => b.id), [unpinned.id], 'the pinned backup is not deleted')
  t.ok(service.get(old.id))
})

t.test('pins recorded before manifests held them are copied into the manifests at start-up', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  let service = await openService(config)
  const b = await service.waitFor((await service.create({}, 'test')).id)
  await service.close()
  // the registry of an older pgkeep: pinned there, the manifest never told
  const path = join(config.backupDir, 'registry.json')
  const doc = JSON.parse(readFileSync(path, 'utf8'))
  doc.backups[0].pinned = true
  writeFileSync(path, JSON.stringify(doc))
  service = await openService(config)
  await service.close()
  const manifest = JSON.parse(readFileSync(join(config.backupDir, `${b.name}.manifest.json`), 'utf8'))
  t.equal(manifest.backup.pinned, true)
  rmSync(path)
  service = await openService(config)
  t.teardown(() => service.close())
  t.equal(service.get(b.id).pinned, true)
})

t.test('a pin given while the dump is being verified is kept by the completed record and its manifest', async t => {
  const config = testConfig(cluster, 'service_app')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  let pinning: Promise<unknown> | undefined
  service.on('status', b => { if (b.status === 'verifying' && pinning === undefined) pinning = service.pin(b.id, true) })
  // verify: after, so that "verifying" is a phase of its own (without a verification it is not recorded)
  const done = await service.waitFor((await service.create({ verify: 'after' }, 'test')).id)
  await pinning
  t.equal(done.status, 'completed')
  t.equal(service.get(done.id).pinned, true, 'the completion did not write over the pin')
  const manifest = JSON.parse(readFileSync(join(config.backupDir, `${done.name}.manifest.json`), 'utf8'))
  t.equal(manifest.backup.pinned, true, 'and the manifest has it')
})
