import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { uuidv7 } from 'uuidv7'
import type { Backup } from '../../../schemas/backup.ts'
import { hashTree, writeManifest } from '../../../server/engine/store/manifest.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { StorageSet } from '../../../server/engine/storage/storage-set.ts'

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
export const enginePath = (file: string): string => join(repoRoot, 'server', 'engine', 'store', file)

/** A valid Backup record; createdAt defaults to now, ids are fresh UUIDv7s. */
export function makeBackup (over: Partial<Backup> = {}): Backup {
  const id = over.id ?? uuidv7()
  return {
    id,
    name: `default-app-${id.slice(-12)}.dump`,
    target: 'default',
    database: 'app',
    format: 'custom',
    compression: 'none',
    level: 0,
    options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
    status: 'completed',
    createdAt: new Date().toISOString(),
    createdBy: 'admin',
    pinned: false,
    ...over,
  }
}

export function tempDir (t: { teardown: (fn: () => void) => void }, prefix = 'pgkeep-storage-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Runs a TypeScript script through tsx in a separate node process (cwd = repo, so `--import tsx` resolves). */
export function spawnScript (script: string, args: string[] = []): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] })
}

/** Resolves with the first stdout line matching re (rejects if the process exits first, with its stderr). */
export function waitForLine (child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const onData = (d: Buffer): void => {
      out += d.toString()
      const line = out.split('\n').find(l => re.test(l))
      if (line !== undefined) { cleanup(); resolve(line) }
    }
    const onErr = (d: Buffer): void => { err += d.toString() }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`child exited (${code}) before ${re}: ${err}`)) }
    const cleanup = (): void => {
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onErr)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onErr)
    child.on('exit', onExit)
  })
}

/** A pid that certainly belonged to a process that has exited. */
export async function deadPid (): Promise<number> {
  const child = spawn('true')
  await once(child, 'exit')
  return child.pid as number
}

/** A live process we own (sleep 30), killed at teardown. */
export function liveProcess (t: { teardown: (fn: () => void) => void }): ChildProcess {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  return child
}

/** A completed backup with its data file and manifest on disk, as the dump pipeline leaves it. */
export async function storeCompleted (dir: string, over: Partial<Backup> = {}): Promise<Backup> {
  const b = makeBackup(over)
  writeFileSync(join(dir, b.name), `dump of ${b.id}`)
  const files = await hashTree(dir, b.name)
  const stored = { ...b, sizeBytes: files[0].sizeBytes, sha256: files[0].sha256 }
  await writeManifest(new LocalStorage(dir), stored, files)
  return stored
}

/** The stores of a pgkeep whose backups stay in its backups dir (the default). */
export function localStores (dir: string): StorageSet {
  return new StorageSet({ backupDir: dir, storage: { primary: dir, copies: [], forcePathStyle: false } }, location => new LocalStorage(location))
}
