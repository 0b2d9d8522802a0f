import { appendFileSync, closeSync, openSync, readSync, writeSync } from 'node:fs'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { join, resolve } from 'node:path'
import t from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { openVerifiedFiles } from '../../../server/engine/verify/open-verified.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { openService } from '../../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'verified_app', { rows: 500 })
const config = testConfig(cluster, 'verified_app')
t.teardown(config.cleanup)
const service = await openService(config)
t.teardown(() => service.close())

async function completed (): Promise<Backup> {
  const b = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  if (b.status !== 'completed') throw new Error(JSON.stringify(b.error))
  return b
}

function flipByte (file: string, at: number): void {
  const fd = openSync(file, 'r+')
  const byte = Buffer.alloc(1)
  readSync(fd, byte, 0, 1, at)
  byte[0] ^= 0xff
  writeSync(fd, byte, 0, 1, at)
  closeSync(fd)
}

t.test('a backup never verified gets the full check first, and its result is stored', async t => {
  const b = await completed()
  t.equal(b.verification, undefined)
  const opened = await service.openVerified(b.id)
  t.equal(opened.backup.verification?.ok, true)
  t.equal(service.get(b.id).verification?.ok, true, 'stored in the registry')
  t.equal(opened.isDirectory, false)
  t.same(opened.files, [{ abs: join(resolve(config.backupDir), b.name), path: b.name, sizeBytes: b.sizeBytes, sha256: b.sha256 }])
})

t.test('a recent good verification is trusted on sizes alone; an old one is not', async t => {
  const b = await completed()
  await service.validate(b.id)
  // same size, one byte changed: only a re-hash can tell
  flipByte(join(config.backupDir, b.name), 100)
  const opened = await service.openVerified(b.id)
  t.equal(opened.backup.verification?.at, service.get(b.id).verification?.at, 'no new check was made')
  const saved = config.downloadVerifyMaxAgeSeconds
  config.downloadVerifyMaxAgeSeconds = 0
  t.teardown(() => { config.downloadVerifyMaxAgeSeconds = saved })
  await t.rejects(service.openVerified(b.id), { code: 'INTEGRITY_FAILED', message: /failed its integrity check/ })
  t.equal(service.get(b.id).verification?.ok, false, 'the failed check is stored')
})

t.test('a file whose size differs from its manifest is refused even right after a good verification', async t => {
  const b = await completed()
  await service.validate(b.id)
  appendFileSync(join(config.backupDir, b.name), 'x')
  await t.rejects(service.openVerified(b.id), { code: 'INTEGRITY_FAILED' })
})

t.test('a manifest path leaving the backups dir is refused before anything is read', async t => {
  let validated = false
  const backup = { name: 'x', verification: { at: new Date().toISOString(), ok: true, method: 'sha256+pg_restore' } } as Backup
  const layout = { isDirectory: false, files: [{ path: '../outside.dump', sizeBytes: 1, sha256: '0'.repeat(64) }] }
  await t.rejects(openVerifiedFiles(backup, layout, { storage: new LocalStorage(config.backupDir), maxAgeSeconds: 3600, validate: async () => { validated = true; return backup } }),
    { code: 'INTEGRITY_FAILED', message: /outside the backups dir/ })
  t.notOk(validated)
})

t.test('an unknown backup does not open', async t => {
  const missing = '01936f1e-8a2b-7c3d-8e4f-0123456789ab'
  await t.rejects(service.openVerified(missing), { code: 'NOT_FOUND' })
})
