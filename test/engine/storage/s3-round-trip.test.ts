import { spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { pipeline } from 'node:stream/promises'
import t, { type Test } from 'tap'
import type { BackupFormat, Compression } from '../../../schemas/backup.ts'
import type { Config } from '../../../server/config.ts'
import { BackupService } from '../../../server/engine/backup-service.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import type { Storage } from '../../../server/engine/storage/storage.ts'
import { ENCRYPTED_CHECKSUM_ONLY } from '../../../server/engine/verify/validator.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { FAST_PART_RETRY, startS3Peer } from '../../helpers/s3-peer.ts'
import { createSampleDatabase, databaseFingerprint, testConfig } from '../../helpers/sample-db.ts'
import { FAST_RETRY, waitUntil } from '../../helpers/service.ts'
import { newAgeKey } from '../../helpers/age-keys.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 's3rt_shop')
const source = await databaseFingerprint(cluster, 's3rt_shop')
const peer = await startS3Peer(t, { bucket: 'pgkeep-rt' })
const scratch = mkdtempSync(join(tmpdir(), 'pgkeep-s3rt-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

// two keys: backups go to both (rotation); the server keeps only the newer one's identity
const keys = ['old', 'new'].map(name => newAgeKey(scratch, name))
const stranger = newAgeKey(scratch, 'stranger').identity

/** The store as pgkeep opens it, but on the loopback peer's client (so the test needs no AWS_* in its own env). */
function openOnPeer (config: Config): (location: string) => Storage {
  return location => location.startsWith('s3://')
    ? peer.storage({ stateDir: join(config.backupDir, '.pgkeep', 'uploads'), prefix: location.replace(/^s3:\/\/[^/]+\/?/, ''), partRetry: FAST_PART_RETRY, firstPartBytes: 5 * 1024 * 1024 })
    : new LocalStorage(location)
}

async function s3Service (t: Test, env: Record<string, string> = {}, encryption?: Config['encryption']): Promise<{ service: BackupService, config: Config }> {
  const base = testConfig(cluster, 's3rt_shop', { PGKEEP_STORAGE: 's3://pgkeep-rt/rt', ...env })
  t.teardown(base.cleanup)
  const config = { ...base, ...(encryption ? { encryption } : {}) }
  const service = await BackupService.open(config, { retry: FAST_RETRY, openStorage: openOnPeer(config) })
  t.teardown(() => service.close({ cancelRunning: true }))
  return { service, config }
}

/** `age -d -i key F | zstd -dc | pg_restore -d DB` (or gunzip / psql): what an admin with stock tools runs. */
async function stockRestore (file: string, format: BackupFormat, compression: Compression, identity: string, db: string): Promise<void> {
  await cluster.createDatabase(db)
  const decompress = compression === 'zstd' ? '| zstd -dc' : compression === 'gzip' ? '| gunzip' : ''
  const tool = format === 'plain'
    ? `${cluster.binDir}/psql -X -q -v ON_ERROR_STOP=1 -h ${cluster.socketDir} -p ${cluster.port} -U postgres -d ${db} -f -`
    : `${cluster.binDir}/pg_restore --exit-on-error -h ${cluster.socketDir} -p ${cluster.port} -U postgres -d ${db}`
  const child = spawn('bash', ['-c', `set -o pipefail; age -d -i ${identity} ${file} ${decompress} | ${tool}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d })
  const code = await new Promise(resolve => child.on('close', resolve))
  if (code !== 0) throw new Error(`stock restore failed (${code}): ${stderr}`)
}

t.test('every format and compression round-trips through the bucket: validate, restore, ranges, delete', async t => {
  const { service } = await s3Service(t)
  const cases: [BackupFormat, Compression][] = [['custom', 'zstd'], ['custom', 'gzip'], ['custom', 'none'], ['plain', 'zstd'], ['plain', 'none'], ['tar', 'gzip'], ['tar', 'none']]
  for (const [format, compression] of cases) {
    const done = await service.waitFor((await service.create({ format, compression }, 'test')).id)
    t.equal(done.status, 'completed', `${format}/${compression}: ${done.error?.message ?? 'completed'}`)
    t.equal(done.storage, 's3://pgkeep-rt/rt')
    t.equal((await service.validate(done.id)).verification?.ok, true, `${format}/${compression} validates`)
    const db = `s3rt_${format}_${compression}`
    await (await service.restore(done.id, { database: db, create: true })).done
    t.equal(await databaseFingerprint(cluster, db), source, `${format}/${compression}: restored database equals the source`)
  }
  const [last] = service.list().items
  const { files: [file], storage } = await service.openVerified(last.id)
  const whole = await buffer(await storage.read(file.path))
  t.same(await buffer(await storage.read(file.path, { start: 100, end: 4195 })), whole.subarray(100, 4196), 'a byte range straight from the bucket')
  await service.delete(last.id)
  t.equal(await storage.stat(last.name), undefined, 'deleted from the bucket')
  t.equal(await storage.stat(`${last.name}.manifest.json`), undefined, 'manifest too')
  t.same(peer.openUploads(), [], 'no upload left open')
})

t.test('encrypted to two recipients: name and record say so, pgkeep and stock tools both restore it', async t => {
  const { service, config } = await s3Service(t, {}, { recipients: keys.map(k => k.recipient), identityFile: keys[1].identity })
  const cases: [BackupFormat, Compression][] = [['custom', 'zstd'], ['plain', 'gzip'], ['tar', 'none'], ['custom', 'none']]
  for (const [format, compression] of cases) {
    const done = await service.waitFor((await service.create({ format, compression }, 'test')).id)
    t.equal(done.status, 'completed', done.error?.message ?? '')
    t.match(done.name, /\.age$/)
    t.same(done.encryption, { method: 'age', recipients: keys.map(k => k.recipient) })
    const checked = await service.validate(done.id)
    t.match(checked.verification, { ok: true, method: format === 'plain' ? 'sha256+sql-trailer' : 'sha256+pg_restore' }, 'full check with the identity')
    const db = `s3rt_enc_${format}_${compression}`
    await (await service.restore(done.id, { database: db, create: true })).done
    t.equal(await databaseFingerprint(cluster, db), source, `${format}/${compression}: pgkeep restores it`)

    // the admin's own recovery: the object from the bucket, the OLD key, age + zstd/gunzip + pg_restore/psql
    const { files: [file], storage } = await service.openVerified(done.id)
    const local = join(scratch, done.name)
    await pipeline(await storage.read(file.path), createWriteStream(local))
    await stockRestore(local, format, compression, keys[0].identity, `${db}_stock`)
    t.equal(await databaseFingerprint(cluster, `${db}_stock`), source, `${format}/${compression}: stock tools restore it with the other key`)
  }
  t.notOk(JSON.stringify(service.list()).includes('AGE-SECRET-KEY'), 'no private key in any record')
  t.equal(config.encryption?.identityFile, keys[1].identity)
})

t.test('without the identity: checksums only (said so), restore refused up front; with a stranger\'s key: a setup error, not a damaged backup', async t => {
  const { service } = await s3Service(t, {}, { recipients: [keys[0].recipient] })
  const done = await service.waitFor((await service.create({ format: 'custom' }, 'test')).id)
  t.equal(done.status, 'completed', done.error?.message ?? '')
  t.same((await service.validate(done.id)).verification, { at: (service.get(done.id).verification as { at: string }).at, ok: true, method: ENCRYPTED_CHECKSUM_ONLY })
  await t.rejects(service.restore(done.id, { database: 's3rt_no_key', create: true }), { code: 'INVALID_STATE', message: /encrypted with age; set PGKEEP_AGE_IDENTITY_FILE/ })
  t.equal((await cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 's3rt_no_key'")).trim(), '0', 'nothing created')

  const { service: wrongKey } = await s3Service(t, { PGKEEP_STORAGE: 's3://pgkeep-rt/rt-wrong' }, { recipients: [keys[0].recipient], identityFile: stranger })
  const other = await wrongKey.waitFor((await wrongKey.create({ format: 'custom' }, 'test')).id)
  await t.rejects(wrongKey.validate(other.id), { code: 'CONFIG_INVALID', message: /none of the configured identities can decrypt this backup/ })
  t.equal(wrongKey.get(other.id).verification, undefined, 'no failed verification recorded against a sound backup')
  const job = await wrongKey.restore(other.id, { database: 's3rt_wrong_key', create: true })
  await t.rejects(job.done, { code: 'CONFIG_INVALID' })
})

t.test('directory format is refused for a bucket', async t => {
  const { service } = await s3Service(t)
  await t.rejects(service.create({ format: 'directory' }, 'test'), { code: 'INVALID_INPUT', message: /backups go to s3:\/\/pgkeep-rt\/rt/ })
})

t.test('cancel mid-upload: the job ends cancelled, its multipart upload is aborted, nothing is in the bucket', async t => {
  await createSampleDatabase(cluster, 's3rt_big', { rows: 40000, padding: 400 })
  const { service } = await s3Service(t, { DATABASE_URL: cluster.url('s3rt_big'), PGKEEP_STORAGE: 's3://pgkeep-rt/cancel' })
  const partsBefore = peer.parts.length
  const queued = await service.create({ compression: 'none' }, 'test')
  // once a part has arrived the store stops answering: the job is caught mid-upload whatever the machine's speed
  await waitUntil(() => peer.parts.length > partsBefore, 60000, 'the first part')
  peer.setHanging(true)
  t.ok(peer.openUploads().some(u => u.key === `cancel/${queued.name}`), 'its upload is open')
  const cancelling = service.cancel(queued.id)
  // the abort must reach the store: it answers again
  peer.setHanging(false)
  const done = await cancelling
  t.equal(done.status, 'cancelled')
  t.same(peer.openUploads().filter(u => u.key.startsWith('cancel/')), [], 'the upload was aborted')
  const bucket = peer.storage({ stateDir: scratch, prefix: 'cancel' })
  t.equal(await bucket.stat(queued.name), undefined, 'no object')
  t.same(await bucket.list(), [], 'nothing at all under the prefix')
})
