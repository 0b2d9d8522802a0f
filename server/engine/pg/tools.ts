import { execFile } from 'node:child_process'
import { accessSync, constants, existsSync, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import type { Compression } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'
import { childEnv } from './child-process.ts'
import { ToolVersionCache } from './tool-versions.ts'

const run = promisify(execFile)

export type PgToolName = 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql'

export interface PgTool {
  path: string
  /** e.g. "15.18" */
  version: string
  major: number
}

function isExecutable (path: string): boolean {
  try { accessSync(path, constants.X_OK); return true } catch { return false }
}

/**
 * Candidate locations, best first: an explicit bin dir, then the newest /usr/lib/postgresql/N/bin
 * (Debian's PATH only carries pg_wrapper, whose pick depends on a running cluster), then PATH.
 */
export function candidateDirs (pgBinDir?: string, pathEnv = process.env.PATH ?? ''): string[] {
  if (pgBinDir) return [pgBinDir]
  const root = '/usr/lib/postgresql'
  const versioned = existsSync(root)
    ? readdirSync(root).filter(v => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)).map(v => join(root, v, 'bin'))
    : []
  return [...versioned, ...pathEnv.split(delimiter).filter(Boolean)]
}

export function parsePgVersion (text: string): { version: string, major: number } | undefined {
  // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" or "16beta2"
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text) ?? /PostgreSQL\s+(\d+)(?:\.(\d+))?/.exec(text)
  if (!m) return undefined
  return { version: m[2] === undefined ? m[1] : `${m[1]}.${m[2]}`, major: Number(m[1]) }
}

const cache = new Map<string, PgTool>()

export interface ToolLookup {
  /** keeps the versions asked between processes (tool-versions.ts); without it every process asks again */
  versionsFile?: string
}

/** Every working copy of a client tool in the candidate dirs, with its version, in the order looked at. */
export async function listPgTools (name: PgToolName, pgBinDir?: string, pathEnv?: string, opts: ToolLookup = {}): Promise<PgTool[]> {
  const found: PgTool[] = []
  const known = opts.versionsFile === undefined ? undefined : await ToolVersionCache.load(opts.versionsFile)
  for (const dir of candidateDirs(pgBinDir, pathEnv)) {
    const path = join(dir, name)
    if (!isExecutable(path) || found.some(t => t.path === path)) continue
    const remembered = known?.get(path)
    if (remembered !== undefined) {
      found.push({ path, ...remembered })
      continue
    }
    try {
      const { stdout } = await run(path, ['--version'], { timeout: 10_000, env: childEnv() })
      const v = parsePgVersion(stdout)
      if (v) {
        found.push({ path, ...v })
        known?.set(path, v)
      }
    } catch {
      // a broken wrapper (e.g. pg_wrapper with no cluster) is not a usable tool: keep looking
    }
  }
  await known?.save()
  return found
}

/** The first of the newest major: /usr/lib/postgresql/N/bin is looked at before PATH, whose pg_wrapper may pick another. */
export function newestTool (found: PgTool[]): PgTool | undefined {
  return found.reduce<PgTool | undefined>((best, t) => (best === undefined || t.major > best.major ? t : best), undefined)
}

/**
 * The newest copy of a PostgreSQL client tool (several majors can be installed side by side under
 * /usr/lib/postgresql/N/bin, and another on PATH): a pg_dump dumps every server up to its own major, so the
 * newest one serves the most targets; with pgBinDir, only what is there. TOOL_MISSING when there is none.
 */
export async function findPgTool (name: PgToolName, pgBinDir?: string, opts: ToolLookup = {}): Promise<PgTool> {
  const key = `${name}:${pgBinDir ?? ''}`
  const hit = cache.get(key)
  if (hit) return hit
  const newest = newestTool(await listPgTools(name, pgBinDir, undefined, opts))
  if (newest === undefined) throw new PgkeepError('TOOL_MISSING', `${name} not found${pgBinDir ? ` in ${pgBinDir}` : ' under /usr/lib/postgresql/*/bin or on PATH'}; install the PostgreSQL client package`)
  cache.set(key, newest)
  return newest
}

/**
 * Whether this pg_dump can compress a directory-format dump with `compression`: there pg_dump writes the
 * files itself, and zstd (like lz4) arrived in pg_dump 16; gzip and none work in every supported version.
 */
export function directoryCompressionSupported (compression: Compression, pgDumpMajor: number): boolean {
  return compression !== 'zstd' || pgDumpMajor >= 16
}

function findOnPath (program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin').split(delimiter)) {
    const p = join(dir, program)
    if (isExecutable(p)) return p
  }
  return undefined
}

export async function findZstd (): Promise<string> {
  const path = findOnPath('zstd')
  if (path) return path
  throw new PgkeepError('TOOL_MISSING', 'zstd not found on PATH; install the zstd package or use --compression gzip')
}

/** coreutils' tee and mkfifo: what an inline check needs to read pg_dump's bytes beside the compressor. */
export async function findCoreutil (program: 'tee' | 'mkfifo'): Promise<string> {
  const path = findOnPath(program)
  if (path) return path
  throw new PgkeepError('TOOL_MISSING', `${program} not found on PATH; install coreutils, or use verify "after" instead of "inline"`)
}

/** The age CLI (encrypts and decrypts backups) or age-keygen (derives an identity's public keys). */
export async function findAge (program: 'age' | 'age-keygen' = 'age'): Promise<string> {
  const path = findOnPath(program)
  if (path) return path
  throw new PgkeepError('TOOL_MISSING', `${program} not found on PATH; install the age package (apt install age) to encrypt or decrypt backups`)
}
