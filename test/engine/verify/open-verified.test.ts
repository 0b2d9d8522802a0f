import { createHash } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { flipByte } from '../../helpers/flip-byte.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
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

async function drain (stream: Readable): Promise<{ bytes: Buffer, error?: Error }> {
  const chunks: Buffer[] = []
  try {
    for await (const c of stream) chunks.push(c as Buffer)
    return { bytes: Buffer.concat(chunks) }
  } catch (err) {
    return { bytes: Buffer.concat(chunks), error: err as Error }
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('a backup never verified opens at once, without the full check; its read is complete and hashes to the record', async t => {
  const b = await completed()
  t.equal(b.verification, undefined)
  const opened = await service.openVerified(b.id)
  t.equal(service.get(b.id).verification, undefined, 'nothing was validated before the first byte')
  t.equal(opened.isDirectory, false)
  t.same(opened.files, [{ abs: join(resolve(config.backupDir), b.name), path: b.name, sizeBytes: b.sizeBytes, sha256: b.sha256 }])
  const { bytes, error } = await drain(await opened.read(opened.files[0]))
  t.error(error)
  t.equal(sha256(bytes), b.sha256)
  t.equal(service.get(b.id).verification, undefined, 'a good read records nothing: a verification also checks the structure')
})

t.test('bytes altered after a good validation: the read fails before its last byte and the backup is flagged', async t => {
  const b = await completed()
  await service.validate(b.id)
  // same size, one byte changed near the end: only a hash of the whole file can tell
  flipByte(join(config.backupDir, b.name), b.sizeBytes! - 3)
  const opened = await service.openVerified(b.id)
  const cuts: string[] = []
  const { bytes, error } = await drain(await opened.read(opened.files[0], { onCut: async (err) => { cuts.push(err.code) } }))
  t.match(error, { code: 'INTEGRITY_FAILED', message: /sha256 .* the manifest says/ })
  t.ok(bytes.length < b.sizeBytes!, `the reader never got the whole file (${bytes.length} of ${b.sizeBytes})`)
  t.same(cuts, ['INTEGRITY_FAILED'], 'the adapter heard of the cut')
  const flagged = service.get(b.id).verification
  t.equal(flagged?.ok, false, 'recorded as a failed verification, before the reader saw the failure')
  t.match(flagged?.message, /the manifest says/)
})

t.test('a flagged backup gets the full check before it opens again: refused while damaged, served once repaired', async t => {
  const b = await completed()
  await service.validate(b.id)
  const file = join(config.backupDir, b.name)
  flipByte(file, 100)
  const opened = await service.openVerified(b.id)
  t.ok((await drain(await opened.read(opened.files[0]))).error)
  await t.rejects(service.openVerified(b.id), { code: 'INTEGRITY_FAILED', message: /failed its integrity check/ })
  flipByte(file, 100)
  const again = await service.openVerified(b.id)
  t.equal(again.backup.verification?.ok, true, 'the full check ran and passed')
  t.equal(service.get(b.id).verification?.ok, true)
})

t.test('a partial range is served on a recent good verification alone; without one, the full check runs first', async t => {
  const b = await completed()
  await service.validate(b.id)
  flipByte(join(config.backupDir, b.name), 100)
  const opened = await service.openVerified(b.id)
  const part = await drain(await opened.readRange(opened.files[0], { start: 0, end: 199 }))
  t.equal(part.bytes.length, 200, 'a recent verification is trusted for a part (documented: a part cannot be hashed)')
  const saved = config.downloadVerifyMaxAgeSeconds
  config.downloadVerifyMaxAgeSeconds = 0
  t.teardown(() => { config.downloadVerifyMaxAgeSeconds = saved })
  const stale = await service.openVerified(b.id)
  await t.rejects(stale.readRange(stale.files[0], { start: 0, end: 199 }), { code: 'INTEGRITY_FAILED', message: /failed its integrity check/ })
  t.equal(service.get(b.id).verification?.ok, false, 'the failed check is stored')
})

t.test('a file whose size differs from its manifest is refused before any byte, and the backup flagged', async t => {
  const b = await completed()
  await service.validate(b.id)
  appendFileSync(join(config.backupDir, b.name), 'x')
  await t.rejects(service.openVerified(b.id), { code: 'INTEGRITY_FAILED', message: /bytes, its manifest says/ })
  t.equal(service.get(b.id).verification?.ok, false)
})

t.test('a manifest path leaving the backups dir is refused before anything is read', async t => {
  let validated = false
  const backup = { name: 'x', verification: { at: new Date().toISOString(), ok: true, method: 'sha256+pg_restore' } } as Backup
  const layout = { isDirectory: false, files: [{ path: '../outside.dump', sizeBytes: 1, sha256: '0'.repeat(64) }] }
  await t.rejects(openVerifiedFiles(backup, layout, { storage: new LocalStorage(config.backupDir), maxAgeSeconds: 3600, validate: async () => { validated = true; return backup }, flag: async () => {} }),
    { code: 'INTEGRITY_FAILED', message: /outside the backups dir/ })
  t.notOk(validated)
})

t.test('an unknown backup does not open', async t => {
  const missing = '01936f1e-8a2b-7c3d-8e4f-0123456789ab'
  await t.rejects(service.openVerified(missing), { code: 'NOT_FOUND' })
})
