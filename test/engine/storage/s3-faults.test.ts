// What only an object store can do wrong: failing parts, dropped connections, refused keys, missing buckets,
// a store that is down or silent; and what our uploads must hold to: bounded memory, a checksum on every part.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3'
import t from 'tap'
import { S3Storage } from '../../../server/engine/storage/s3-storage.ts'
import { DEFAULT_PART_BYTES, maxObjectBytes, MEMORY_BUDGET_BYTES, partSizeFor } from '../../../server/engine/storage/s3-multipart-writer.ts'
import { createS3Client } from '../../../server/engine/storage/s3-storage.ts'
import { FAST_PART_RETRY, PEER_CREDENTIALS, startS3Peer } from '../../helpers/s3-peer.ts'
import { bytes, feed, MiB, put, readAll, sha } from './storage-fixtures.ts'

const PART = DEFAULT_PART_BYTES

t.test('a part answered 503 is sent again and the object is intact, also past the SDK\'s own three attempts', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  for (const times of [1, 5]) {
    const data = bytes(3 * PART + 7)
    peer.failPart(2, times)
    await put(storage, `retried-${times}`, data)
    t.equal(sha(await readAll(await storage.read(`retried-${times}`))), sha(data), `part 2 refused ${times} time(s)`)
  }
  t.same(peer.openUploads(), [])
})

t.test('a part whose connection is reset midway is sent again and the object is intact', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  const data = bytes(2 * PART + 3)
  peer.resetPart(1)
  await put(storage, 'reset', data)
  t.equal(sha(await readAll(await storage.read('reset'))), sha(data))
})

t.test('a complete whose reply was lost is retried and its NoSuchUpload taken for success when the object is there', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  const data = bytes(PART + 5)
  peer.dropNextCompleteReply()
  await put(storage, 'lost-reply', data)
  t.ok((await readAll(await storage.read('lost-reply'))).equals(data))
  t.same(await storage.listUnfinished(), [])
})

t.test('a part failing more often than the retries allow fails the upload STORAGE_UNAVAILABLE and aborts it', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  peer.failPart(1, 1000)
  const w = await storage.createWriter('doomed')
  await t.rejects(feed(w, bytes(3 * PART)), { code: 'STORAGE_UNAVAILABLE' })
  await t.rejects(w.commit({ sizeBytes: 3 * PART }), { code: 'STORAGE_UNAVAILABLE' })
  t.same(peer.openUploads(), [], 'the failed upload was aborted')
  t.same(await storage.listUnfinished(), [])
  t.equal(await storage.stat('doomed'), undefined)
})

t.test('every part carries a SHA-256 checksum the store can verify, and parts go up in parallel', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  await put(storage, 'checked', bytes(6 * PART + 1))
  t.equal(peer.parts.length, 7)
  t.same(peer.parts.filter(p => p.checksum === undefined || !p.checksumMatches), [], 'all present and matching')
  t.ok(peer.maxConcurrentParts() > 1, `up to ${peer.maxConcurrentParts()} parts in flight`)
  t.ok(peer.maxConcurrentParts() <= 4, 'never more than 4')
})

t.test('wrong credentials fail STORAGE_AUTH_FAILED, and the message holds no secret', async t => {
  const peer = await startS3Peer(t)
  const secret = 'very-secret-key-123'
  const storage = peer.storage({ stateDir: t.testdir(), credentials: { accessKeyId: 'SOMEONE-ELSE', secretAccessKey: secret } })
  for (const op of [() => storage.probe(), () => storage.stat('x'), () => storage.read('x'), () => storage.list()]) {
    const err = await op().then(() => undefined, (e: Error & { code?: string }) => e)
    t.equal(err?.code, 'STORAGE_AUTH_FAILED')
    t.match(err?.message, /s3:\/\/pgkeep-test/)
    t.notMatch(err?.message, secret)
    t.notMatch(err?.message, /SOMEONE-ELSE|Signature=|X-Amz-/)
    t.equal((err as Error).cause, undefined, 'the SDK error (with the signed request) is not kept')
  }
  const wrongSecret = peer.storage({ stateDir: t.testdir(), credentials: { accessKeyId: PEER_CREDENTIALS.accessKeyId, secretAccessKey: secret } })
  await t.rejects(wrongSecret.probe(), { code: 'STORAGE_AUTH_FAILED', message: /SignatureDoesNotMatch/ }, 'the right key with a wrong secret')
})

t.test('a bucket that does not exist fails STORAGE_NOT_FOUND', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir(), bucket: 'no-such-bucket' })
  await t.rejects(storage.probe(), { code: 'STORAGE_NOT_FOUND', message: /s3:\/\/no-such-bucket/ })
  await t.rejects(storage.list(), { code: 'STORAGE_NOT_FOUND' })
})

t.test('a store answering 503 to everything fails STORAGE_UNAVAILABLE after bounded retries', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  peer.setUnavailable(true)
  await t.rejects(storage.probe(), { code: 'STORAGE_UNAVAILABLE' })
  await t.rejects(storage.list(), { code: 'STORAGE_UNAVAILABLE' })
  const w = await storage.createWriter('down')
  await t.rejects(feed(w, bytes(2 * PART)), { code: 'STORAGE_UNAVAILABLE' })
})

t.test('a store nobody listens on fails STORAGE_UNAVAILABLE', async t => {
  const port = await new Promise<number>(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) })
  })
  const client = createS3Client({ endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, region: 'us-east-1', credentials: PEER_CREDENTIALS })
  t.teardown(() => client.destroy())
  const storage = new S3Storage({ bucket: 'b', stateDir: t.testdir(), client, partRetry: FAST_PART_RETRY })
  await t.rejects(storage.probe(), { code: 'STORAGE_UNAVAILABLE', message: /ECONNREFUSED/ })
})

t.test('a store that accepts connections and never answers fails STORAGE_UNAVAILABLE at the idle timeout, not never', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir(), idleTimeoutMs: 300 })
  peer.setHanging(true)
  await t.rejects(storage.probe(), { code: 'STORAGE_UNAVAILABLE' })
  await t.rejects(storage.stat('x'), { code: 'STORAGE_UNAVAILABLE' })
})

t.test('cancelling by signal mid-upload aborts the multipart upload and leaves nothing', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  const cancel = new AbortController()
  const w = await storage.createWriter('cancelled', { signal: cancel.signal })
  const data = bytes(8 * PART)
  let written = 0
  const writing = new Promise<void>((resolve, reject) => {
    w.stream.on('error', reject)
    const more = (): void => {
      while (written < data.length) {
        if (peer.parts.length > 0) { cancel.abort(); return }
        const ok = w.stream.write(data.subarray(written, written + MiB))
        written += MiB
        if (!ok) { w.stream.once('drain', more); return }
      }
      w.stream.end(resolve)
    }
    more()
  })
  await t.rejects(writing, { code: 'CANCELLED' })
  await w.abort()
  t.ok(peer.parts.length > 0 && written < data.length, 'cancelled after a part was stored, before the end')
  t.same(peer.openUploads(), [], 'the upload was aborted on the store')
  t.same(await storage.listUnfinished(), [])
  t.equal(await storage.stat('cancelled'), undefined)
  await t.rejects(w.commit({ sizeBytes: written }), { code: /CANCELLED|INVALID_STATE/ })
})

t.test('a read whose connection breaks off resumes where it stopped, and fails STORAGE_UNAVAILABLE if it keeps breaking', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  const data = bytes(3 * MiB)
  await put(storage, 'cut', data)
  peer.cutReads(MiB, 2)
  t.ok((await readAll(await storage.read('cut'))).equals(data), 'whole object, cut twice')
  peer.cutReads(100_000, 1)
  t.ok((await readAll(await storage.read('cut', { start: 100, end: 2 * MiB }))).equals(data.subarray(100, 2 * MiB + 1)), 'a range, cut once')
  peer.cutReads(0)
  await t.rejects(readAll(await storage.read('cut')), { code: 'STORAGE_UNAVAILABLE', message: /broke off after 0 of 3145728 bytes, 4 times/ })
})

t.test('an object replaced while a read resumes fails INTEGRITY_FAILED instead of splicing two objects', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir() })
  await storage.writeText('swapped', 'a'.repeat(3 * MiB))
  peer.cutReads(MiB, 1)
  const cut = peer.nextCut()
  const reading = await storage.read('swapped')
  // s3rver overwrites a file in place: replacing it while it still streams the first reply would cut that short
  await cut
  await storage.writeText('swapped', 'b'.repeat(3 * MiB))
  await t.rejects(readAll(reading), { code: 'INTEGRITY_FAILED' })
})

t.test('part sizes double every 1000 parts up to the 64 MiB budget; one object holds about 492 GiB', async t => {
  t.equal(partSizeFor(1, PART), 8 * MiB)
  t.equal(partSizeFor(1000, PART), 8 * MiB)
  t.equal(partSizeFor(1001, PART), 16 * MiB)
  t.equal(partSizeFor(3001, PART), 64 * MiB)
  t.equal(partSizeFor(10_000, PART), MEMORY_BUDGET_BYTES)
  t.equal(maxObjectBytes(PART), 504_000 * MiB)
  t.equal(partSizeFor(5000, 32 * MiB, false), 32 * MiB, 'without growth (R2) every part is the first size')
  t.equal(maxObjectBytes(32 * MiB, false), 320_000 * MiB)
})

t.test('equal parts when growth is off: a small part size makes small parts throughout', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir(), firstPartBytes: 5 * MiB, partGrowth: false })
  const data = bytes(12 * MiB)
  await put(storage, 'equal', data)
  t.same(peer.parts.map(p => p.bytes).sort((a, b) => b - a), [5 * MiB, 5 * MiB, 2 * MiB])
  t.ok((await readAll(await storage.read('equal'))).equals(data))
})

t.test('writing 300 MiB keeps the writer\'s memory within a bound, far below the object\'s size', async t => {
  const peer = await startS3Peer(t)
  const child = spawn(process.execPath, ['--no-warnings', '--import', 'tsx', join(import.meta.dirname, '../../helpers/s3-write-child.ts')], {
    env: { ...process.env, S3_ENDPOINT: peer.endpoint, S3_BUCKET: peer.bucket, S3_STATE_DIR: t.testdir(), S3_WRITE_MIB: '300' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  t.equal(code, 0)
  const { baseline, peak } = JSON.parse(out) as { baseline: { heapAndExternal: number, rss: number }, peak: { heapAndExternal: number, rss: number } }
  const growth = (peak.heapAndExternal - baseline.heapAndExternal) / MiB
  t.comment(`heap+external growth ${growth.toFixed(1)} MiB, peak rss ${(peak.rss / MiB).toFixed(1)} MiB`)
  // 64 MiB of part buffers at most (5 x 8 MiB here), plus slack for the SDK and not-yet-collected garbage
  t.ok(growth < 100, `heap+external grew ${growth.toFixed(1)} MiB (bound 100)`)
  t.equal(peer.parts.filter(p => p.uploadId === peer.parts.at(-1)!.uploadId).length, Math.ceil(300 / 8))
})

t.test('an upload id is journaled (0600, storage url, key, pid) until the upload completes or is aborted', async t => {
  const peer = await startS3Peer(t)
  const stateDir = join(t.testdir(), '.pgkeep', 'uploads')
  const storage = peer.storage({ stateDir, prefix: 'p' })
  const w = await storage.createWriter('journaled')
  await feed(w, bytes(PART + 1))
  const names = await readdir(stateDir)
  t.equal(names.length, 1)
  const entry = JSON.parse(await readFile(join(stateDir, names[0]), 'utf8'))
  t.match(entry, { storage: 's3://pgkeep-test/p', key: 'journaled', uploadId: peer.openUploads()[0].uploadId, pid: process.pid, startedAt: String })
  t.equal((await stat(join(stateDir, names[0]))).mode & 0o777, 0o600)
  await w.commit({ sizeBytes: PART + 1 })
  t.same(await readdir(stateDir), [], 'gone once completed')
  const other = peer.storage({ stateDir, prefix: 'elsewhere' })
  const w2 = await other.createWriter('journaled')
  await feed(w2, bytes(PART + 1))
  t.same(await storage.listUnfinished(), [], 'another storage url\'s uploads are not ours')
  await w2.abort()
  t.same(await readdir(stateDir), [], 'gone once aborted')
})

t.test('an upload only the store knows of (crash before the journal write) is listed, and aborted by key', async t => {
  const peer = await startS3Peer(t)
  const storage = peer.storage({ stateDir: t.testdir(), prefix: 'p' })
  const client = peer.client()
  await client.send(new CreateMultipartUploadCommand({ Bucket: peer.bucket, Key: 'p/orphan' }))
  await client.send(new CreateMultipartUploadCommand({ Bucket: peer.bucket, Key: 'p/orphan' }))
  await client.send(new CreateMultipartUploadCommand({ Bucket: peer.bucket, Key: 'not-under-the-prefix' }))
  const left = await storage.listUnfinished()
  t.same(left.map(u => u.key), ['orphan', 'orphan'])
  await storage.abortUnfinished({ key: 'orphan' })
  t.same(peer.openUploads().map(u => u.key), ['not-under-the-prefix'])
  t.same(await storage.listUnfinished(), [])
})
