import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

/**
 * What a child may see of pgkeep's own environment: where programs are, the user's home (libpq reads
 * ~/.postgresql/root.crt for sslmode verify-ca/verify-full) and the time zone. Nothing else: the
 * environment carries DATABASE_URL (with its password), PGKEEP_JWT_SECRET and whatever else the
 * operator set, and a child has no business with any of it.
 */
const PASSED_THROUGH = ['PATH', 'HOME', 'TZ', 'TMPDIR'] as const

/**
 * The one environment builder for every child process (pg_dump, pg_restore, psql, zstd, `--version`
 * probes): the few passed-through variables, the C locale (pg tools' messages are parsed in English),
 * and exactly the `extra` variables the caller names, e.g. PGPASSFILE for the pg tools.
 */
export function childEnv (extra: Record<string, string | undefined> = {}, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin' }
  for (const name of PASSED_THROUGH) if (from[name] !== undefined) env[name] = from[name]
  Object.assign(env, { LANG: 'C', LC_ALL: 'C', LC_MESSAGES: 'C' })
  for (const [name, value] of Object.entries(extra)) if (value !== undefined) env[name] = value
  return env
}

function isExecutable (path: string): boolean {
  try { accessSync(path, constants.X_OK); return true } catch { return false }
}

let setprivPath: string | null | undefined

/** util-linux's setpriv, where it can set a parent-death signal (Linux only; Debian's util-linux has it). */
function findSetpriv (): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = process.platform === 'linux'
      ? ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable) ?? null
      : null
  }
  return setprivPath ?? undefined
}

/** Whether children started by spawnChild die with pgkeep (false where setpriv is missing). */
export function childrenDieWithParent (): boolean {
  return findSetpriv() !== undefined
}

/**
 * spawn() for the children that do the long work (pg_dump, pg_restore, psql, zstd). A child of a
 * pgkeep that is killed with -9 would otherwise run on to its end: a directory-format pg_dump keeps
 * its server connections, its locks and its disk writes for hours. Node cannot ask the kernel for a
 * parent-death signal itself, so the child is started through `setpriv --pdeathsig KILL`, which sets
 * it and execs the program in place (same pid, so kill() and exit codes are the program's own).
 * The signal is tied to the thread that forked the child; node forks on its main thread, which lives
 * as long as the process. A program that is not executable is spawned directly so the caller sees
 * the ordinary ENOENT/EACCES error rather than setpriv's exit code.
 */
export function spawnChild (command: string, args: readonly string[], options: SpawnOptions & { env: NodeJS.ProcessEnv }): ChildProcess {
  const setpriv = findSetpriv()
  if (setpriv === undefined || !isExecutable(command)) return spawn(command, args, { ...options, shell: false })
  return spawn(setpriv, ['--pdeathsig', 'KILL', '--', command, ...args], { ...options, shell: false })
}

/** "exited with code 1" / "was killed by SIGKILL": how a child ended, in words for an error message. */
export function describeExit (code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `was killed by ${signal}`
  return `exited with code ${code ?? 'unknown'}`
}
