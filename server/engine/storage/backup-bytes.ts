import type { Readable } from 'node:stream'
import type { Backup } from '../../../schemas/backup.ts'
import { InvalidStateError } from '../../errors.ts'
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
