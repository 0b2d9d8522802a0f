import { PassThrough } from 'node:stream'
import { createGunzip, createGzip, constants as zlibConstants } from 'node:zlib'
import type { Compression } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'
import { childEnv, describeExit } from './child-process.ts'
import { childStage, type ChildStageSpec, type CodecStage } from './child-stage.ts'
import { findZstd } from './tools.ts'

export type { CodecStage } from './child-stage.ts'

/** How many bytes zstd read and wrote, from its own last report. */
export interface ZstdCount { read: number, written: number }

/**
 * zstd -vv ends with `/*stdin*\ : 75.37%   (67543861 B => 50906709 B, /*stdout*\)` (1.5; exact sizes from -vv on)
 * or `(67543861 => 50906709 bytes, ...)` (1.4). undefined when there is no such line.
 */
export function parseZstdCount (stderr: string): ZstdCount | undefined {
  const m = /\(\s*(\d+)(?: B)? =>\s*(\d+) (?:B|bytes),[^\n]*\)\s*$/.exec(stderr.split('\n').filter(l => l.includes('=>')).at(-1) ?? '')
  return m ? { read: Number(m[1]), written: Number(m[2]) } : undefined
}

/**
 * zstd as a child: -T0 (all cores) to compress; for childStage, or for childChain ahead of or behind age. With
 * `onCount` it reports (-vv, once it has ended) how many bytes it read: pg_dump's bytes, counted without passing
 * through node.
 */
export async function zstdSpec (mode: 'compress' | 'decompress', level = 3, opts: { onCount?: (c: ZstdCount | undefined) => void } = {}): Promise<ChildStageSpec> {
  const { onCount } = opts
  return {
    program: 'zstd',
    path: await findZstd(),
    args: mode === 'compress' ? ['-T0', `-${level}`, onCount ? '-vv' : '-q', '-c', '-'] : ['-d', '-q', '-c', '-'],
    env: childEnv(),
    ...(onCount ? { onClose: ({ code, stderr }) => { onCount(code === 0 ? parseZstdCount(stderr) : undefined) } } : {}),
    describeFailure: ({ pid, code, signal, stderr }) => {
      const why = stderr.trim().split('\n').at(-1)
      return new PgkeepError('INTERNAL', `the compressor zstd (pid ${pid}) ${describeExit(code, signal)}${why ? `: ${why}` : ''}`,
        { details: { process: 'zstd', pid, exitCode: code, signal } })
    },
  }
}

export async function createCompressor (compression: Compression, level: number): Promise<CodecStage> {
  if (compression === 'zstd') return childStage(await zstdSpec('compress', level))
  if (compression === 'gzip') {
    const gz = createGzip({ level, chunkSize: 256 * 1024 })
    return { stream: gz, kill: () => gz.destroy() }
  }
  const pass = new PassThrough({ highWaterMark: 1024 * 1024 })
  return { stream: pass, kill: () => pass.destroy() }
}

export async function createDecompressor (compression: Compression): Promise<CodecStage> {
  if (compression === 'zstd') return childStage(await zstdSpec('decompress'))
  if (compression === 'gzip') {
    // finishFlush tolerant of nothing: a truncated gzip must error, not end quietly
    const gunzip = createGunzip({ chunkSize: 256 * 1024, finishFlush: zlibConstants.Z_FINISH })
    return { stream: gunzip, kill: () => gunzip.destroy() }
  }
  const pass = new PassThrough({ highWaterMark: 1024 * 1024 })
  return { stream: pass, kill: () => pass.destroy() }
}

