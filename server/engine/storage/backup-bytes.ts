import { createHash } from 'node:crypto'
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError, InvalidStateError } from '../../errors.ts'
import { createDecryptor } from '../pg/age.ts'
import { createDecoders, type Decoder } from '../pg/backup-codec.ts'
import type { Storage } from './storage.ts'

/** A completed single-file backup as its readers (restore, validation) take it. */
export interface BackupBytes {
  /** a file the PostgreSQL tools can open themselves (seek, -j): only a local, unencrypted backup has one */
  path?: string
  /** the stored bytes, from the start */
  open: () => Promise<Readable>
  /** fresh stages turning the stored bytes back into what pg_dump wrote (decrypt, decompress) */
  decoders: () => Promise<Decoder[]>
}

/**
 * How to read `backup` from `storage`. An encrypted backup needs the age identity: without one this refuses
 * before anything starts, saying what to configure.
 */
export function backupBytes (backup: Backup, storage: Storage, identityFile?: string): BackupBytes {
  if (backup.encryption !== undefined && identityFile === undefined) {
    throw new InvalidStateError(`backup ${backup.name} is encrypted with age; set PGKEEP_AGE_IDENTITY_FILE (or encryption.identityFile) to a key file of one of its recipients to read it`)
  }
  const path = backup.encryption === undefined ? storage.localPath?.(backup.name) : undefined
  return {
    ...(path !== undefined ? { path } : {}),
    open: async () => await storage.read(backup.name),
    decoders: async () => await createDecoders(backup.compression, backup.encryption ? identityFile : undefined),
  }
}

/**
 * An encrypted backup's bytes decrypted (still compressed, as `age -d` alone would give them), for a download
 * that needs no key at the other end. The stored bytes are hashed on the way: if they do not match the manifest,
 * the stream fails at its end instead of finishing, so the reader sees a failed download, never a wrong file
 * (age's own authentication already fails a damaged chunk as it is read).
 */
export async function decryptedRead (storage: Storage, file: { path: string, sha256: string }, identityFile: string): Promise<Readable> {
  const hash = createHash('sha256')
  const check = new Transform({
    transform (chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk) },
    flush (cb) {
      const got = hash.digest('hex')
      cb(got === file.sha256 ? null : new IntegrityError(`the stored bytes of ${file.path} have sha256 ${got}, the manifest says ${file.sha256}; the download was cut`))
    },
  })
  const age = await createDecryptor(identityFile)
  const out = new PassThrough({ highWaterMark: 1024 * 1024 })
  pipeline(await storage.read(file.path), check, age.stream, out).catch((err: unknown) => {
    age.kill('SIGKILL')
    out.destroy(err as Error)
  })
  return out
}
