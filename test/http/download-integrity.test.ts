import { createHash } from 'node:crypto'
import { flipByte } from '../helpers/flip-byte.ts'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Transform, type Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import type { Storage } from '../../server/engine/storage/storage.ts'
import { auditLines, build, tokenFor } from '../helpers/app.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'

// Downloads over a real listening socket: what curl sees when the bytes on disk no longer match the manifest.
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'download_integrity', { rows: 2000 })
const config = testConfig(cluster, 'download_integrity')
t.teardown(config.cleanup)
const { app } = await build(t, config)
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
const operator = await tokenFor(app, 'operator')
const service = app.backupService
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

async function completed (body: Record<string, unknown> = { compression: 'none' }): Promise<Backup> {
  const b = await service.waitFor((await service.create(body, 'test')).id)
  if (b.status !== 'completed') throw new Error(JSON.stringify(b.error))
  return b
}

interface Download {
  status: number
  headers: Record<string, string | string[] | undefined>
  bytes: Buffer
  /** the body ended as HTTP says a body ends (Content-Length met, or the last chunk), not by a cut */
  complete: boolean
}

/** GET over the socket; `onFirstData` runs at the first body bytes, before the rest is taken. */
async function download (id: string, headers: Record<string, string> = {}, onFirstData?: () => Promise<void>): Promise<Download> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/api/backup/download/${id}`, headers: { authorization: `Bearer ${operator}`, ...headers } }, res => {
      const chunks: Buffer[] = []
      let first = true
      const done = (complete: boolean): void => { resolve({ status: res.statusCode!, headers: res.headers, bytes: Buffer.concat(chunks), complete }) }
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        if (first && onFirstData) {
          first = false
          res.pause()
          onFirstData().then(() => res.resume(), reject)
        }
      })
      res.on('end', () => done(res.complete))
      res.on('error', () => done(false))
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * The store's reads of `key` pass their first 64 KB, then wait until the test releases them: a stand-in for a
 * file far larger than anything could read before its first byte is due.
 */
function holdReadsAfterFirstBytes (storage: Storage, key: string): { reads: () => number, holding: () => boolean, release: () => void } {
  const original = storage.read.bind(storage)
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  let reads = 0
  let holding = false
  storage.read = async (k, range) => {
    const source = await original(k, range)
    if (k !== key) return source
    reads++
    let passed = 0
    return source.pipe(new Transform({
      async transform (chunk: Buffer, _enc, cb) {
        for (let i = 0; i < chunk.length; i += 16384) {
          if (passed === 4) { holding = true; await released; holding = false }
          this.push(chunk.subarray(i, i + 16384))
          passed++
        }
        cb()
      },
    })) as Readable
  }
  // a reader with its own buffers opens the file itself: its reads are held the same way, 16 KB at most each
  const originalOpen = storage.openLocal
  if (originalOpen !== undefined) {
    storage.openLocal = async (k) => {
      const fh = await originalOpen(k)
      if (k !== key) return fh
      reads++
      let passed = 0
      const read = fh.read.bind(fh) as (b: Buffer, o: number, l: number, p: number) => Promise<{ bytesRead: number, buffer: Buffer }>
      Object.assign(fh, {
        read: async (buffer: Buffer, offset: number, length: number, position: number) => {
          if (passed === 4) { holding = true; await released; holding = false }
          passed++
          return await read(buffer, offset, Math.min(length, 16384), position)
        },
      })
      return fh
    }
  }
  t.teardown(() => { storage.read = original; storage.openLocal = originalOpen })
  return { reads: () => reads, holding: () => holding, release }
}

t.test('the first byte leaves while the store still holds back the rest of the file: nothing reads it whole first', async t => {
  const b = await completed()
  t.equal(b.verification, undefined, 'never validated: the old policy validated such a backup before its first byte')
  t.ok(b.sizeBytes! > 4 * 16384, 'bigger than what the store lets through')
  const gate = holdReadsAfterFirstBytes(service.stores.of(b), b.name)
  let heldAtFirstByte: boolean | undefined
  const res = await download(b.id, {}, async () => {
    // the first bytes are here and the rest is not read: the server's next read is (or is about to be) held
    for (let i = 0; i < 100 && !gate.holding(); i++) await sleep(10)
    heldAtFirstByte = gate.holding()
    gate.release()
  })
  t.equal(res.status, 200)
  t.equal(heldAtFirstByte, true, 'the first bytes arrived while the rest of the file was still unread')
  t.ok(res.complete)
  t.equal(sha256(res.bytes), b.sha256)
  t.equal(gate.reads(), 1, 'one read, the one being sent: no validation pass')
  t.equal(service.get(b.id).verification, undefined)
})

t.test('a download whose bytes were altered on disk after a completed validation is cut short of its Content-Length and the backup flagged', async t => {
  const b = await completed()
  t.equal((await service.validate(b.id)).verification?.ok, true)
  flipByte(join(config.backupDir, b.name), b.sizeBytes! - 10)
  const res = await download(b.id)
  t.equal(res.status, 200, 'the transfer had started: the check runs as bytes leave')
  t.equal(Number(res.headers['content-length']), b.sizeBytes)
  t.notOk(res.complete, 'the client sees a failed download')
  t.ok(res.bytes.length < b.sizeBytes!, `never the whole file (${res.bytes.length} of ${b.sizeBytes} bytes)`)
  const flagged = service.get(b.id).verification
  t.equal(flagged?.ok, false, 'the backup is flagged')
  t.match(flagged?.message, /sha256 .* the manifest says/)
  const audit = (await auditLines(app)).filter(l => l.action === 'backup.download' && l.backupId === b.id)
  t.ok(audit.some(l => l.outcome === 'failed' && l.code === 'INTEGRITY_FAILED'), 'the cut is in the audit log')

  const again = await download(b.id)
  t.equal(again.status, 409, 'flagged: the full check runs before the next download, and refuses it')
  t.equal(JSON.parse(again.bytes.toString()).code, 'INTEGRITY_FAILED')
})

t.test('a Range that is the whole file is checked like a whole download; a part rests on a recent verification', async t => {
  const b = await completed()
  await service.validate(b.id)
  flipByte(join(config.backupDir, b.name), 10)
  const part = await download(b.id, { range: 'bytes=0-99' })
  t.equal(part.status, 206)
  t.equal(part.bytes.length, 100, 'a part is served on the strength of the validation just made')
  const whole = await download(b.id, { range: 'bytes=0-' })
  t.equal(whole.status, 206)
  t.notOk(whole.complete, 'the whole file as a range is cut')
  t.equal(service.get(b.id).verification?.ok, false)
  const partAfter = await download(b.id, { range: 'bytes=0-99' })
  t.equal(partAfter.status, 409, 'once flagged, a part waits for a full check, which refuses it')
})

t.test('a directory backup with an altered file: the tar is cut short of its Content-Length', async t => {
  const b = await completed({ format: 'directory', compression: 'none' })
  await service.validate(b.id)
  const toc = join(config.backupDir, b.name, 'toc.dat')
  flipByte(toc, 20)
  const res = await download(b.id)
  t.equal(res.status, 200)
  t.notOk(res.complete)
  t.ok(res.bytes.length < Number(res.headers['content-length']))
  t.equal(service.get(b.id).verification?.ok, false)
})
