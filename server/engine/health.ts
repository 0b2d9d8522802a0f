import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Config, Target } from '../config.ts'
import { PgkeepError, toPgkeepError } from '../errors.ts'
import { versionFromNum, withTargetClient } from './pg/connection.ts'
import { childEnv } from './pg/child-process.ts'
import { checkDumpCompatible } from './pg/inspector.ts'
import { findAge, findPgTool, findZstd, type PgTool, type PgToolName } from './pg/tools.ts'
import { LocalStorage } from './storage/local-storage.ts'
import { configuredOpener } from './storage/open-storage.ts'
import type { StorageOpener } from './storage/storage-set.ts'
import type { Storage } from './storage/storage.ts'

const run = promisify(execFile)

export type ToolName = PgToolName | 'zstd' | 'age'

type Failed = { ok: false, error: PgkeepError }

/** A tool found (its version and where), or why not. */
export type ToolHealth = { name: ToolName } & ({ ok: true, version: string, path: string } | Failed)

export interface ServerVersion { version: string, major: number }

/** Whether pg_dump can dump this target now; a failure keeps the server's version when the server answered. */
export type TargetHealth = { name: string } & ({ ok: true, server: ServerVersion } | (Failed & { server?: ServerVersion }))

export type FreeSpace = { minFreeBytes: number } & ({ ok: boolean, freeBytes: number } | Failed)

export interface BackupDirHealth {
  path: string
  writable: { ok: true } | Failed
  freeSpace: FreeSpace
}

/** A store backups are written to (primary or copy): reachable, credentials valid, a write + delete probe passed. */
export type StorageHealth = { url: string, role: 'primary' | 'copy' } & ({ ok: true } | Failed)

export interface HealthReport {
  /** pg_dump first, then the other tools asked for, in the order asked */
  tools: ToolHealth[]
  targets: TargetHealth[]
  backupDir: BackupDirHealth
  /** the stores other than the backups dir itself (which `backupDir` covers) */
  storages: StorageHealth[]
}

export interface HealthOptions {
  /** tools to look for besides pg_dump, which every backup needs and is always checked */
  tools?: readonly Exclude<ToolName, 'pg_dump'>[]
  /** make the backups dir first, as the CLI's first command would; the server made its own at start-up */
  createBackupDir?: boolean
  /** how to open the configured stores (tests pass their own client) */
  openStorage?: StorageOpener
}

async function probeStorage (storage: Storage, role: StorageHealth['role']): Promise<StorageHealth> {
  try {
    await storage.probe()
    return { url: storage.url, role, ok: true }
  } catch (err) {
    return { url: storage.url, role, ok: false, error: toPgkeepError(err) }
  }
}

/** Every configured store but the backups dir, opened; one that cannot even be opened is a failed probe. */
async function probeStorages (config: Config, open: StorageOpener): Promise<StorageHealth[]> {
  const backupDirUrl = new LocalStorage(config.backupDir).url
  const roles = [{ location: config.storage.primary, role: 'primary' as const }, ...config.storage.copies.map(location => ({ location, role: 'copy' as const }))]
  return await Promise.all(roles.map(async ({ location, role }) => {
    let storage: Storage
    try { storage = open(location) } catch (err) { return { url: location, role, ok: false as const, error: toPgkeepError(err) } }
    if (storage.url === backupDirUrl) return undefined
    try {
      return await probeStorage(storage, role)
    } finally {
      // opened for this probe alone: its client (sockets, agents) must not outlive it
      (storage as { close?: () => void }).close?.()
    }
  })).then(all => all.filter((h): h is StorageHealth => h !== undefined))
}

async function zstdVersion (): Promise<{ version: string, path: string }> {
  const path = await findZstd()
  const { stdout } = await run(path, ['--version'], { timeout: 10_000, env: childEnv() })
  return { version: /v(\d+\.\d+\.\d+)/.exec(stdout)?.[1] ?? stdout.trim(), path }
}

async function ageVersion (): Promise<{ version: string, path: string }> {
  const path = await findAge()
  const { stdout } = await run(path, ['--version'], { timeout: 10_000, env: childEnv() })
  return { version: stdout.trim().replace(/^v/, ''), path }
}

async function probeTool (name: ToolName, lookup: Promise<{ version: string, path: string }>): Promise<ToolHealth> {
  try {
    const { version, path } = await lookup
    return { name, ok: true, version, path }
  } catch (err) {
    return { name, ok: false, error: toPgkeepError(err) }
  }
}

async function probeTarget (target: Target, pgDump: Promise<PgTool>): Promise<TargetHealth> {
  let server: ServerVersion | undefined
  try {
    const num = await withTargetClient(target, async c => Number((await c.query('SHOW server_version_num')).rows[0].server_version_num))
    server = versionFromNum(num)
    // without pg_dump (TOOL_MISSING) no target can be dumped, however well it answers
    checkDumpCompatible((await pgDump).major, server.major)
    return { name: target.name, ok: true, server }
  } catch (err) {
    return { name: target.name, ok: false, error: toPgkeepError(err), ...(server ? { server } : {}) }
  }
}

async function probeWritable (dir: string, create: boolean): Promise<BackupDirHealth['writable']> {
  try {
    if (create) await mkdir(dir, { recursive: true })
    const probe = join(dir, `.pgkeep-probe-${process.pid}-${randomBytes(4).toString('hex')}`)
    await writeFile(probe, '')
    await rm(probe, { force: true })
    return { ok: true }
  } catch (err) {
    return { ok: false, error: toPgkeepError(err) }
  }
}

/** Free space on the volume of `dir` against the floor (readiness, doctor, the storage.low notification). */
export async function probeFreeSpace (dir: string, minFreeBytes: number): Promise<FreeSpace> {
  try {
    const fs = await statfs(dir)
    const freeBytes = fs.bavail * fs.bsize
    return { ok: freeBytes >= minFreeBytes, freeBytes, minFreeBytes }
  } catch (err) {
    return { ok: false, error: toPgkeepError(err), minFreeBytes }
  }
}

/** Every configured target probed side by side: reachable, credentials, and the version rule against the newest pg_dump. */
export async function probeTargets (config: Pick<Config, 'targets' | 'pgBinDir'>, pgDump = findPgTool('pg_dump', config.pgBinDir)): Promise<TargetHealth[]> {
  pgDump.catch(() => {}) // each probe reports TOOL_MISSING itself
  return await Promise.all(Object.values(config.targets).map(async target => await probeTarget(target, pgDump)))
}

/**
 * Can this installation take a backup: the client tools present, every target answering with a server
 * pg_dump can dump, the backups dir writable with enough free space, every other store taking a probe object. Probes run side by side and never
 * throw; each result says what it found or why it failed, for readiness and doctor to word their own way.
 */
export async function checkHealth (config: Config, opts: HealthOptions = {}): Promise<HealthReport> {
  const pgDump = findPgTool('pg_dump', config.pgBinDir)
  const lookup = (name: ToolName): Promise<{ version: string, path: string }> =>
    name === 'pg_dump' ? pgDump : name === 'zstd' ? zstdVersion() : name === 'age' ? ageVersion() : findPgTool(name, config.pgBinDir)
  const writable = probeWritable(config.backupDir, opts.createBackupDir === true)
  const [tools, targets, backupDir, storages] = await Promise.all([
    Promise.all((['pg_dump', ...(opts.tools ?? [])] as ToolName[]).map(async name => await probeTool(name, lookup(name)))),
    probeTargets(config, pgDump),
    // free space is asked after the writable probe, which may have had to create the dir
    writable.then(async w => ({ path: config.backupDir, writable: w, freeSpace: await probeFreeSpace(config.backupDir, config.minFreeBytes) })),
    probeStorages(config, opts.openStorage ?? configuredOpener(config)),
  ])
  return { tools, targets, backupDir, storages }
}
