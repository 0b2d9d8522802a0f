import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Backup } from '../../../schemas/backup.ts'
import { InvalidStateError } from '../../errors.ts'
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
 * that needs no key at the other end. `stored` is the stored bytes as a checked read gives them (hashed on the
 * way, failing before their last chunk if they do not match the manifest): age never sees the end of a wrong
 * file, so the reader sees a failed download, never a wrong one (age's own authentication already fails a
 * damaged chunk as it is read).
 */
export async function decryptedRead (stored: Readable, identityFile: string): Promise<Readable> {
  const age = await createDecryptor(identityFile)
  const out = new PassThrough({ highWaterMark: 1024 * 1024 })
  pipeline(stored, age.stream, out).catch((err: unknown) => {
    age.kill('SIGKILL')
    out.destroy(err as Error)
  })
  return out
}
