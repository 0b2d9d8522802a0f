import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { createServer, get, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { IntegrityError } from '../../../server/errors.ts'
import { PooledCheckedRead } from '../../../server/engine/verify/pooled-checked-read.ts'

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-pooled-read-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const bytes = randomBytes(24 * 1024 * 1024 + 12345)
const file = join(dir, 'backup.dump')
writeFileSync(file, bytes)
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const expected = { path: 'backup.dump', sizeBytes: bytes.length, sha256: sha256(bytes) }

/** Serves the file through PooledCheckedRead; `held` decides what the stream believes the response still holds. */
async function serve (held: (res: { writableLength: number }) => number, manifest = expected): Promise<{ server: Server, url: string, cuts: IntegrityError[] }> {
  const cuts: IntegrityError[] = []
  const server = createServer((_req, res) => {
    open(file, 'r').then(fh => {
      res.writeHead(200, { 'content-length': manifest.sizeBytes })
      const body = new PooledCheckedRead(fh, manifest, () => held(res), async err => { cuts.push(err) })
      body.on('error', () => res.destroy())
      body.pipe(res)
    }, () => res.destroy())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, cuts }
}

/** A client that reads slowly, so the server's socket is behind and holds pushed chunks for a while. */
async function slowDownload (url: string): Promise<{ body: Buffer, complete: boolean }> {
  return await new Promise((resolve, reject) => {
    get(url, res => {
      const parts: Buffer[] = []
      let sinceRest = 0
      res.on('data', (d: Buffer) => {
        parts.push(d)
        sinceRest += d.length
        if (sinceRest >= 2 * 1024 * 1024) {
          sinceRest = 0
          res.pause()
          sleep(20).then(() => res.resume(), reject)
        }
      })
      res.on('end', () => resolve({ body: Buffer.concat(parts), complete: res.complete }))
      res.on('error', () => resolve({ body: Buffer.concat(parts), complete: false }))
      res.on('aborted', () => resolve({ body: Buffer.concat(parts), complete: false }))
    }).on('error', reject)
  })
}

t.test('a slow reader gets every byte as stored: no buffer is written over while the socket still holds it', async t => {
  const { url, cuts } = await serve(res => res.writableLength)
  const got = await slowDownload(url)
  t.ok(got.complete)
  t.equal(got.body.length, bytes.length)
  t.equal(sha256(got.body), expected.sha256)
  t.equal(cuts.length, 0)
})

t.test('the test can see a buffer reused too early: a stream told the socket holds nothing sends wrong bytes', async t => {
  const { url } = await serve(() => 0)
  const got = await slowDownload(url)
  t.not(sha256(got.body), expected.sha256, 'reusing buffers the socket still holds corrupts the transfer')
})

t.test('bytes that do not match the manifest: the transfer is cut before its last chunk and the mismatch reported', async t => {
  const { url, cuts } = await serve(res => res.writableLength, { ...expected, sha256: '0'.repeat(64) })
  const got = await slowDownload(url)
  t.notOk(got.complete, 'the client sees a failed transfer')
  t.ok(got.body.length < bytes.length, `${got.body.length} of ${bytes.length} bytes: short of the whole file`)
  t.equal(cuts.length, 1)
  t.match(cuts[0]!.message, /have sha256 .*the manifest says 0{64}; the transfer was cut/)
})

t.test('a file shorter than its manifest says is cut, naming both sizes', async t => {
  const { url, cuts } = await serve(res => res.writableLength, { ...expected, sizeBytes: bytes.length + 1 })
  const got = await slowDownload(url)
  t.notOk(got.complete)
  t.equal(cuts.length, 1)
  t.match(cuts[0]!.message, new RegExp(`gave ${bytes.length} bytes, the manifest says ${bytes.length + 1}`))
})
