// Issue 9 benchmark: streaming a dump-sized object through S3Storage (multipart, 8 MiB parts, SHA-256 per
// part) to a loopback S3 (s3rver behind the test proxy) vs through LocalStorage to a directory. Loopback
// measures our overhead (hashing, buffering, HTTP), not a network. Size by BENCH_S3_MB (default 1024).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { LocalStorage } from '../server/engine/storage/local-storage.ts'
import type { Storage } from '../server/engine/storage/storage.ts'
import { startS3Peer } from '../test/helpers/s3-peer.ts'

const mb = Number(process.env.BENCH_S3_MB ?? 1024)
const MiB = 1024 * 1024

// incompressible: 16 random MiB cycled (each chunk a fresh buffer, as a pipe hands them over)
const pool = randomBytes(16 * MiB)
async function * data (): AsyncGenerator<Buffer> {
  for (let i = 0; i < mb * 16; i++) yield Buffer.from(pool.subarray((i % 256) * 65536, (i % 256 + 1) * 65536))
}

let peakRss = 0
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 20)

async function upload (storage: Storage, key: string): Promise<number> {
  const started = process.hrtime.bigint()
  const w = await storage.createWriter(key)
  await pipeline(Readable.from(data()), w.stream)
  await w.commit({ sizeBytes: mb * MiB })
  return Number(process.hrtime.bigint() - started) / 1e6
}

const dir = await mkdtemp(join(tmpdir(), 'pgkeep-bench-s3-'))
const peer = await startS3Peer(undefined)
try {
  const localMs = await upload(new LocalStorage(dir), 'bench.dump')
  await rm(join(dir, 'bench.dump'))
  const rssBefore = process.memoryUsage().rss
  peakRss = rssBefore
  const s3 = peer.storage({ stateDir: join(dir, '.pgkeep', 'uploads') })
  const s3Ms = await upload(s3, 'bench.dump')
  const rate = (ms: number): string => `${(mb / (ms / 1000)).toFixed(0)} MB/s`
  console.log(`size                 ${mb} MiB`)
  console.log(`LocalStorage         ${(localMs / 1000).toFixed(1)} s  ${rate(localMs)}`)
  console.log(`S3Storage (loopback) ${(s3Ms / 1000).toFixed(1)} s  ${rate(s3Ms)}  (${peer.parts.length} parts, up to ${peer.maxConcurrentParts()} in flight)`)
  console.log(`ratio S3/local       ${(localMs / s3Ms).toFixed(2)}`)
  console.log(`peak RSS during S3   ${(peakRss / MiB).toFixed(0)} MiB (before: ${(rssBefore / MiB).toFixed(0)} MiB; includes the in-process s3rver and proxy)`)
} finally {
  clearInterval(sampler)
  await peer.close()
  await rm(dir, { recursive: true, force: true })
}
