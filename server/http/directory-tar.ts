import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { pack as tarPack } from 'tar-stream'
import type { VerifiedFile } from '../engine/verify/open-verified.ts'

/**
 * Exact size of the tar for these files: a 512-byte header per file, data padded to 512, two zero blocks at
 * the end. Only when every name fits the plain ustar name field; otherwise (pax headers) unknown.
 */
export function tarSize (files: VerifiedFile[]): number | undefined {
  if (files.some(f => Buffer.byteLength(f.path) > 100)) return undefined
  return files.reduce((sum, f) => sum + 512 + Math.ceil(f.sizeBytes / 512) * 512, 0) + 1024
}

/**
 * A directory backup as one uncompressed tar of its files, built on the fly and read one file at a time.
 * tar-stream (archiver's own engine) driven through pipeline() rather than archiver: when a client goes away
 * mid-file and the response destroys the archive, archiver's entry sink raises an error nobody can listen to
 * (the process dies) and the file it was reading stays open. Here whatever ends an entry closes its file, and a
 * file that no longer has its manifest's size or sha256 fails the entry (the checked read withholds its last
 * chunk) and with it the archive, short of its Content-Length.
 */
export function directoryTar (files: VerifiedFile[], read: (file: VerifiedFile) => Promise<Readable>): Readable {
  const pack = tarPack()
  void (async () => {
    for (const f of files) {
      const { mtime, mode } = f.abs === undefined ? { mtime: new Date(), mode: 0o640 } : await stat(f.abs)
      const entry = pack.entry({ name: f.path, size: f.sizeBytes, mtime, mode: mode & 0o777 })
      await pipeline(await read(f), entry)
    }
    pack.finalize()
  })().catch((err: Error) => { pack.destroy(err) })
  return pack as unknown as Readable
}
