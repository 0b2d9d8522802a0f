import type { Readable, Writable } from 'node:stream'
import type { Compression } from '../../../schemas/backup.ts'
import { childEncoderSpecs, createEncoders } from '../pg/backup-codec.ts'
import { childChain } from '../pg/child-chain.ts'
import { inputBytesSoFar } from '../pg/child-io.ts'
import type { CodecStage, ZstdCount } from '../pg/codec.ts'
import type { InlineCheck } from '../verify/inline-check.ts'

/**
 * How pg_dump's bytes become stored bytes. zstd (and age after it) run as children that pg_dump writes into
 * directly, a kernel pipe: the raw bytes, the bulk of the work, never pass through node, which then sees only
 * the stored bytes it hashes and writes (bench/dump-options.ts measured the options). zstd counts what it read;
 * /proc gives a live figure meanwhile. gzip and none run in node on the raw stream, counted there.
 * With an inline check, `tee` copies the raw stream to the check's FIFO ahead of zstd, or node does for the others.
 */
export interface EncodingRoute {
  /**
   * Starts the encoder children reading `pgDumpStdout`: call it in the tick pg_dump was spawned. Returns what node
   * reads: the stored bytes, or with `outputFd` (children only) nothing, the last child writing that file itself.
   */
  start: (pgDumpStdout: Readable, outputFd?: number) => Readable
  /** the stages node pipes the stream through ([] when the children do it all) */
  readonly encoders: CodecStage[]
  /** whether node sees the raw bytes (and counts them itself) */
  readonly rawInNode: boolean
  /** node's copy of the raw stream for an inline check, when the raw bytes pass through node */
  readonly rawTap?: Writable
  /** raw bytes taken so far, while the children run (a lower bound), or undefined */
  rawSoFar: () => number | undefined
  /** once the encoders have ended: zstd's own count of the raw bytes, and of what it wrote */
  count: () => ZstdCount | undefined
  kill: () => void
}

export async function prepareEncodingRoute (opts: { compression: Compression, level: number, recipients?: readonly string[], check?: InlineCheck }): Promise<EncodingRoute> {
  const { compression, level, recipients, check } = opts
  let count: ZstdCount | undefined
  const specs = await childEncoderSpecs(compression, level, recipients, c => { count = c })
  if (specs === undefined) {
    const encoders = await createEncoders(compression, level, recipients)
    return {
      start: stdout => stdout,
      encoders,
      rawInNode: true,
      ...(check ? { rawTap: check.tap() } : {}),
      rawSoFar: () => undefined,
      count: () => undefined,
      kill: () => { for (const e of encoders) e.kill('SIGKILL') },
    }
  }
  const chainSpecs = check ? [await check.teeSpec(), ...specs] : specs
  let chain: CodecStage | undefined
  return {
    start: (stdout, outputFd) => {
      chain = childChain(chainSpecs, { input: stdout, output: outputFd })
      return chain.stream
    },
    encoders: [],
    rawInNode: false,
    // the first child reads pg_dump's stdout: tee, else zstd
    rawSoFar: () => inputBytesSoFar(chain?.pid),
    count: () => count,
    kill: () => { chain?.kill('SIGKILL') },
  }
}
