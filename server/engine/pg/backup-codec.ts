import type { Compression } from '../../../schemas/backup.ts'
import type { PgkeepError } from '../../errors.ts'
import { createDecryptor, createEncryptor, createZstdDecryptor, createZstdEncryptor, encryptSpec } from './age.ts'
import type { ChildStageSpec } from './child-stage.ts'
import { createCompressor, createDecompressor, zstdSpec, type CodecStage, type ZstdCount } from './codec.ts'

/** One stage of reading a backup back: its label says which one failed (age, zstd, gzip). */
export interface Decoder { label: string, stage: CodecStage }

/**
 * The stages turning pg_dump's bytes into a backup's stored bytes: compress, then encrypt when `recipients` are
 * given. zstd and age run as one chain over a kernel pipe (bench/encryption.ts: the compressed bytes never pass
 * through node); gzip (in process) is followed by age as its own stage.
 */
export async function createEncoders (compression: Compression, level: number, recipients?: readonly string[]): Promise<CodecStage[]> {
  if (recipients === undefined || recipients.length === 0) return [await createCompressor(compression, level)]
  if (compression === 'zstd') return [await createZstdEncryptor(level, recipients)]
  if (compression === 'none') return [await createEncryptor(recipients)]
  return [await createCompressor(compression, level), await createEncryptor(recipients)]
}

/**
 * The encoders as children only (zstd [| age]), for pg_dump to write into directly: pg_dump's bytes then never
 * pass through node (bench/dump-options.ts), and zstd says how many it read (`onCount`). undefined when the
 * codec runs in node (gzip, none): those keep createEncoders.
 */
export async function childEncoderSpecs (compression: Compression, level: number, recipients: readonly string[] | undefined, onCount: (c: ZstdCount | undefined) => void): Promise<ChildStageSpec[] | undefined> {
  if (compression !== 'zstd') return undefined
  const zstd = await zstdSpec('compress', level, { onCount })
  return recipients === undefined || recipients.length === 0 ? [zstd] : [zstd, await encryptSpec(recipients)]
}

/** The stages turning stored bytes back into what pg_dump wrote: decrypt with `identityFile` when encrypted, decompress. */
export async function createDecoders (compression: Compression, identityFile?: string): Promise<Decoder[]> {
  if (identityFile === undefined) return [{ label: compression, stage: await createDecompressor(compression) }]
  // the chain reports age's failure as the cause when both fail, and age fails first on a damaged file
  if (compression === 'zstd') return [{ label: 'age', stage: await createZstdDecryptor(identityFile) }]
  const decrypt = { label: 'age', stage: await createDecryptor(identityFile) }
  return compression === 'none' ? [decrypt] : [decrypt, { label: compression, stage: await createDecompressor(compression) }]
}

// a child that failed is exiting: this only bounds a wait that should be a few milliseconds
const EXIT_WAIT_MS = 5000

/**
 * The first of `stages` (in pipeline order) that failed, as it explains itself: when a pipeline breaks, the
 * error it rejects with is often the symptom (EPIPE, a premature close, the reader's own complaint), and the
 * cause is a codec child that died first (zstd killed, age refusing the key).
 */
export async function firstStageFailure (stages: CodecStage[]): Promise<PgkeepError | undefined> {
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<undefined>(resolve => { timer = setTimeout(() => resolve(undefined), EXIT_WAIT_MS) })
  try {
    for (const stage of stages) {
      if (!stage.failure) continue
      const failed = await Promise.race([stage.failure(), gaveUp])
      if (failed) return failed
    }
    return undefined
  } finally {
    clearTimeout(timer)
  }
}
