import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** `source` into `path` (0640; removed again if anything fails), hashed on the way: its size and sha256. */
export async function writeHashed (source: Readable, path: string): Promise<{ bytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  const meter = new Transform({ transform (chunk: Buffer, _enc, cb) { hash.update(chunk); bytes += chunk.length; cb(null, chunk) } })
  try {
    await pipeline(source, meter, createWriteStream(path, { mode: 0o640 }))
  } catch (err) {
    await rm(path, { force: true })
    throw err
  }
  return { bytes, sha256: hash.digest('hex') }
}
