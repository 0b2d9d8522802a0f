import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { hashLandingFile } from '../../../server/engine/dump/landing-file.ts'
import type { PgkeepError } from '../../../server/errors.ts'

const dir = await mkdtemp(join(tmpdir(), 'pgkeep-landing-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

const MiB = 1024 * 1024

/** A real writer appending to `path` in another process, as zstd writes a backup; resolves on its exit code. */
function appendInChild (path: string, bytes: number): Promise<number | null> {
  const child = spawn('sh', ['-c', `head -c ${bytes} /dev/urandom >> "$1"`, 'sh', path], { stdio: 'ignore' })
  return new Promise(resolve => child.on('close', resolve))
}

t.test('a file another process writes is hashed to its end and flushed to disk while it lands', async t => {
  const path = join(dir, 'landing.partial')
  await writeFile(path, '')
  const landed = await hashLandingFile(path, appendInChild(path, 3 * MiB), { flushEveryBytes: MiB })
  const onDisk = await readFile(path)
  t.equal(landed.sizeBytes, 3 * MiB)
  t.equal(landed.sha256, createHash('sha256').update(onDisk).digest('hex'))
  t.ok(landed.flushedBytes >= MiB, `flushed ${landed.flushedBytes} bytes on the way: the commit's fsync finds little left`)
  t.ok(landed.flushedBytes <= landed.sizeBytes)
})

t.test('a flush that fails fails the read: a writeback error must not be left for the commit\'s fsync to miss', async t => {
  // a real disk cannot be made to fail a flush here; the kernel refuses fdatasync on a /proc file (EINVAL), a
  // file that reads like any other
  const err = await hashLandingFile('/proc/cpuinfo', Promise.resolve(), { flushEveryBytes: 1 }).then(() => undefined, (e: unknown) => e as PgkeepError)
  t.equal(err?.code, 'INTERNAL')
  t.match(err?.message, /flushing the backup file to disk failed: .*EINVAL/)
})

t.test('a file smaller than one flush is read without flushing (the commit fsyncs it)', async t => {
  const path = join(dir, 'small.partial')
  await writeFile(path, 'a small dump')
  const landed = await hashLandingFile(path, Promise.resolve(), { flushEveryBytes: MiB })
  t.same(landed, { sizeBytes: 12, sha256: createHash('sha256').update('a small dump').digest('hex'), flushedBytes: 0 })
})

t.test('a cancel stops the read of a file whose writer never ends', async t => {
  const path = join(dir, 'cancelled.partial')
  await writeFile(path, Buffer.alloc(2 * MiB))
  const ac = new AbortController()
  const reading = hashLandingFile(path, new Promise(() => {}), { signal: ac.signal, flushEveryBytes: MiB })
  setImmediate(() => ac.abort())
  await t.rejects(reading, { name: 'AbortError' })
})
