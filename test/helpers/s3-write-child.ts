// Streams S3_WRITE_MIB MiB through an S3Storage writer to the test peer at S3_ENDPOINT and reports, as one JSON
// line, the process's memory before and at its peak: run apart from the peer so only the writer's memory counts.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import { createS3Client, S3Storage } from '../../server/engine/storage/s3-storage.ts'
import { PEER_CREDENTIALS } from './s3-peer.ts'

const mib = Number(process.env.S3_WRITE_MIB)
const client = createS3Client({ endpoint: process.env.S3_ENDPOINT, forcePathStyle: true, region: 'us-east-1', credentials: PEER_CREDENTIALS })
const storage = new S3Storage({ bucket: process.env.S3_BUCKET!, prefix: 'memory', stateDir: process.env.S3_STATE_DIR!, client })

const used = (): { heapAndExternal: number, rss: number } => {
  const m = process.memoryUsage()
  return { heapAndExternal: m.heapUsed + m.external, rss: m.rss }
}
const chunk = randomBytes(64 * 1024)
const baseline = used()
const peak = { ...baseline }
const sampler = setInterval(() => {
  const now = used()
  peak.heapAndExternal = Math.max(peak.heapAndExternal, now.heapAndExternal)
  peak.rss = Math.max(peak.rss, now.rss)
}, 10)

async function * data (): AsyncGenerator<Buffer> {
  // one buffer handed over again and again (the writer copies it into a part): what grows is the writer's own
  for (let i = 0; i < mib * 16; i++) yield chunk
}
const w = await storage.createWriter('big')
await pipeline(Readable.from(data()), w.stream)
await w.commit({ sizeBytes: mib * 1024 * 1024 })
clearInterval(sampler)
storage.close()
process.stdout.write(JSON.stringify({ baseline, peak }) + '\n')
