import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Target } from '../../config.ts'
import { isProcessAlive, processStartTicks } from '../store/file-lock.ts'
import { childEnv } from './child-process.ts'

/** Escapes a .pgpass field: backslash and colon are the only specials. */
function pgpassField (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/:/g, '\\:')
}

/**
 * libpq reads a -d value containing '=' (or starting with postgres://) as a whole connection string, so a
 * database named "dbname=other" would silently dump "other": every database name reaches a child as a
 * quoted conninfo keyword instead.
 */
export function dbnameConninfo (db: string): string {
  return `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

export interface ChildPgEnv {
  /** environment for pg_dump/pg_restore/psql: the minimal childEnv() plus PGPASSFILE, PGAPPNAME (and PGSSLMODE); no PGPASSWORD ever */
  env: NodeJS.ProcessEnv
  /** connection argv (host, port, user, the database as a quoted conninfo); never contains the password */
  connArgs: (database?: string) => string[]
  /** the job's private 0700 directory (its passfile, an inline check's FIFO), removed by dispose */
  dir: string
  dispose: () => Promise<void>
}

/**
 * `<backupDir>/.pgkeep/run`: the passfiles of running jobs. Inside the backups dir (not /tmp) so that the
 * next start can find what a killed process left; inside `.pgkeep` (0700) so that nothing that lists or
 * serves backups ever reaches it (no backup name can start with a dot).
 */
export function passfileRoot (backupDir: string): string {
  return join(backupDir, '.pgkeep', 'run')
}

let ownStartTicks: string | undefined

/** A job's passfile directory is named `<pid>-<start ticks>-<random>`: its owner, pid reuse included. */
function ownerPrefix (): string {
  ownStartTicks ??= String(processStartTicks(process.pid) ?? 0)
  return `${process.pid}-${ownStartTicks}-`
}

function isOwnerAlive (dirName: string): boolean {
  const m = /^(\d+)-(\d+)-/.exec(dirName)
  if (!m) return false
  const pid = Number(m[1])
  if (!isProcessAlive(pid)) return false
  // the pid lives, but if it started at another time it is someone else's (a container's pid 1 in a later life)
  const ticks = processStartTicks(pid)
  return ticks === undefined || Number(m[2]) === 0 || ticks === Number(m[2])
}

/**
 * Removes the passfiles of processes that are gone (killed with -9, the machine lost power): a passfile
 * holds a password in plain text and must not outlive its job. Those of live processes, this one or
 * another pgkeep sharing the dir, are left alone. Returns the directory names removed.
 */
export async function removeOrphanedPassfiles (backupDir: string): Promise<string[]> {
  const root = passfileRoot(backupDir)
  let names: string[]
  try { names = await readdir(root) } catch { return [] }
  const removed: string[] = []
  for (const name of names) {
    if (isOwnerAlive(name)) continue
    await rm(join(root, name), { recursive: true, force: true })
    removed.push(name)
  }
  return removed
}

/**
 * Passwords reach child processes only through a per-job 0600 passfile in a private 0700 directory under
 * passfileRoot(), removed when the job ends (or, after a crash, by the next start). argv and the
 * environment never carry them.
 */
export async function prepareChildEnv (target: Target, appName: string, backupDir: string): Promise<ChildPgEnv> {
  const root = passfileRoot(backupDir)
  await mkdir(root, { recursive: true, mode: 0o700 })
  const dir = await mkdtemp(join(root, ownerPrefix()))
  const passfile = join(dir, 'pgpass')
  const line = target.password === undefined
    ? ''
    : `*:*:*:${pgpassField(target.user)}:${pgpassField(target.password)}\n`
  try {
    await writeFile(passfile, line, { mode: 0o600 })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  // the job's target alone decides where we connect: none of the caller's PG* settings are passed on
  const env = childEnv({ PGPASSFILE: passfile, PGAPPNAME: appName, PGSSLMODE: target.sslmode })
  return {
    env,
    connArgs: (database = target.database) => ['-h', target.host, '-p', String(target.port), '-U', target.user, '-d', dbnameConninfo(database)],
    dir,
    dispose: async () => { await rm(dir, { recursive: true, force: true }) },
  }
}
