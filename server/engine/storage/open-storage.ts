import { join } from 'node:path'
import type { StorageConfig } from '../../config.ts'
import { LocalStorage } from './local-storage.ts'
import { LazyS3Storage } from './lazy-s3-storage.ts'
import type { Storage } from './storage.ts'
import { parseStorageUrl, s3Url } from './storage-url.ts'

export { parseStorageUrl } from './storage-url.ts'

export interface OpenStorageOptions {
  /** where S3 upload ids are journaled: `<backupDir>/.pgkeep/uploads/` */
  stateDir: string
  /** path-style addressing (`endpoint/bucket/key`): MinIO, Garage and most self-hosted stores need it */
  forcePathStyle?: boolean
  /** multipart part size (the first parts'; 8 MiB by default) */
  partBytes?: number
  /** every part the same size (Cloudflare R2 requires it); otherwise parts grow past 1,000 */
  equalParts?: boolean
}

/** The Storage behind a configured url: a directory or `file://` url, or `s3://bucket/prefix`. CONFIG_INVALID otherwise. */
export function openStorage (url: string, opts: OpenStorageOptions): Storage {
  const where = parseStorageUrl(url)
  if (where.kind === 'local') return new LocalStorage(where.dir)
  // the SDK loads only once the bucket is used: a local dump never pays for it
  return new LazyS3Storage({
    bucket: where.bucket, prefix: where.prefix, stateDir: opts.stateDir, forcePathStyle: opts.forcePathStyle,
    ...(opts.partBytes !== undefined ? { firstPartBytes: opts.partBytes } : {}),
    ...(opts.equalParts === true ? { partGrowth: false } : {}),
  })
}

/** The opener for one pgkeep's configuration: upload ids journaled under its backups dir, its addressing style. */
export function configuredOpener (config: { backupDir: string, storage: Pick<StorageConfig, 'forcePathStyle' | 'partBytes' | 'equalParts'> }): (url: string) => Storage {
  const stateDir = join(config.backupDir, '.pgkeep', 'uploads')
  const { forcePathStyle, partBytes, equalParts } = config.storage
  return url => openStorage(url, { stateDir, forcePathStyle, partBytes, equalParts })
}
