import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ObjectWriter, Storage } from '../../../server/engine/storage/storage.ts'

export const MiB = 1024 * 1024

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Random bytes, cheap to make in bulk: one random MiB repeated with each copy's first bytes changed. */
export function bytes (n: number): Buffer {
  const out = Buffer.allocUnsafe(n)
  const block = randomBytes(Math.min(n, MiB))
  for (let off = 0; off < n; off += block.length) {
    if (block.length >= 4) block.writeUInt32BE(off / block.length, 0)
    block.copy(out, off, 0, Math.min(block.length, n - off))
  }
  return out
}

/** Feeds `data` to the writer in 64 KiB chunks, as a dump's pipe would, and waits for the stream to finish. */
export async function feed (w: ObjectWriter, data: Buffer): Promise<void> {
  async function * chunks (): AsyncGenerator<Buffer> {
    for (let off = 0; off < data.length; off += 64 * 1024) yield data.subarray(off, off + 64 * 1024)
  }
  await pipeline(Readable.from(chunks()), w.stream)
}

export async function put (storage: Storage, key: string, data: Buffer): Promise<void> {
  const w = await storage.createWriter(key)
  await feed(w, data)
  await w.commit({ sizeBytes: data.length })
}

export async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
