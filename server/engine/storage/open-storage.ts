import { PgkeepError } from '../../errors.ts'
import { LocalStorage } from './local-storage.ts'
import type { Storage } from './storage.ts'

/** Opens a configured location: an absolute directory (S3 is wired in by the storage issue's S3 part). */
export function openStorage (location: string): Storage {
  if (location.startsWith('s3://')) throw new PgkeepError('CONFIG_INVALID', `${location}: S3 storage is not available in this build`)
  return new LocalStorage(location)
}
