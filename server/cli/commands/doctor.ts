import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, statfs, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { loadConfig, type Config, type Target } from '../../config.ts'
import { toPgkeepError } from '../../errors.ts'
import { prepareChildEnv } from '../../engine/pg/passfile.ts'
import { findPgTool, findZstd, type PgTool } from '../../engine/pg/tools.ts'
import { GLOBAL_HELP, parseCommandArgs, UsageError, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { formatBytes, printJson } from '../output.ts'

const run = promisify(execFile)

export interface Check { name: string, ok: boolean, detail: string }

async function toolCheck (name: 'pg_dump' | 'pg_restore' | 'psql', config: Config): Promise<{ check: Check, tool?: PgTool }> {
  try {
    const tool = await findPgTool(name, config.pgBinDir)
    return { check: { name, ok: true, detail: `${tool.version} (${tool.path})` }, tool }
  } catch (err) {
    return { check: { name, ok: false, detail: toPgkeepError(err).message } }
  }
}

async function zstdCheck (): Promise<Check> {
  try {
    const path = await findZstd()
    const { stdout } = await run(path, ['--version'], { timeout: 10_000 })
    const version = /v(\d+\.\d+\.\d+)/.exec(stdout)?.[1] ?? stdout.trim()
    return { name: 'zstd', ok: true, detail: `${version} (${path})` }
  } catch (err) {
    return { name: 'zstd', ok: false, detail: toPgkeepError(err).message }
  }
}

/** First meaningful line of psql's stderr; it names host/user, never the password (that is in the passfile). */
function psqlReason (stderr: string): string {
  const line = stderr.split('\n').map(l => l.trim()).find(l => l.length > 0) ?? 'psql failed'
  return line.replace(/^psql: error: /, '')
}

async function targetCheck (target: Target, psql: PgTool | undefined, pgDump: PgTool | undefined): Promise<Check> {
  const name = `target ${target.name}`
  const where = `${target.user}@${target.host}:${target.port}/${target.database}`
  if (!psql) return { name, ok: false, detail: `${where}: cannot check without psql` }
  const child = await prepareChildEnv(target, 'pgkeep-doctor')
  try {
    const { stdout } = await run(psql.path, ['-X', '-w', '-A', '-t', '-c', 'show server_version_num', ...child.connArgs()], {
      env: { ...child.env, PGCONNECT_TIMEOUT: '5' }, timeout: 15_000,
    })
    const num = Number(stdout.trim())
    const major = Math.floor(num / 10000)
    const version = `${major}.${num % 10000}`
    if (pgDump && pgDump.major < major) {
      return { name, ok: false, detail: `${where}: server ${version} is newer than pg_dump ${pgDump.version}; install the PostgreSQL ${major} client` }
    }
    return { name, ok: true, detail: `${where}: PostgreSQL ${version}` }
  } catch (err) {
    const e = err as { stderr?: string, killed?: boolean }
    return { name, ok: false, detail: `${where}: ${e.killed ? 'timed out' : psqlReason(e.stderr ?? String(err))}` }
  } finally {
    await child.dispose()
  }
}

async function backupDirChecks (config: Config): Promise<Check[]> {
  const dir = config.backupDir
  try {
    await mkdir(dir, { recursive: true })
    const probe = join(dir, `.pgkeep-doctor-${randomBytes(4).toString('hex')}`)
    await writeFile(probe, 'ok')
    await unlink(probe)
  } catch (err) {
    return [{ name: 'backups dir', ok: false, detail: `${dir}: not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }]
  }
  const checks: Check[] = [{ name: 'backups dir', ok: true, detail: `${dir} is writable` }]
  const fs = await statfs(dir)
  const free = fs.bavail * fs.bsize
  checks.push({
    name: 'free space',
    ok: free >= config.minFreeBytes,
    detail: `${formatBytes(free)} free, minimum ${formatBytes(config.minFreeBytes)}`,
  })
  return checks
}

export async function runChecks (config: Config): Promise<Check[]> {
  const [dump, restore, psql, zstd] = await Promise.all([
    toolCheck('pg_dump', config), toolCheck('pg_restore', config), toolCheck('psql', config), zstdCheck(),
  ])
  const targets = await Promise.all(Object.values(config.targets).map(t => targetCheck(t, psql.tool, dump.tool)))
  return [dump.check, restore.check, psql.check, zstd, ...targets, ...await backupDirChecks(config)]
}

export const command: Command = {
  name: 'doctor',
  summary: 'check tools, targets, backups dir and free space',
  help: `Usage: pgkeep doctor [--json]

Checks that pg_dump, pg_restore, psql and zstd are installed (with versions), that every target
answers and that pg_dump is at least as new as its server, that the backups directory is writable
and that it has at least minFreeBytes free. One line per check; exits 1 if any check fails.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { globals } = parseCommandArgs(argv, {}, io)
    if (globals.server) throw new UsageError('doctor checks the local machine; it does not take --server')
    const checks = await runChecks(loadConfig(io.env))
    const ok = checks.every(c => c.ok)
    if (globals.json) printJson(io, { ok, checks })
    else {
      const w = Math.max(...checks.map(c => c.name.length))
      for (const c of checks) io.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(w)}  ${c.detail}\n`)
    }
    return ok ? EXIT.OK : EXIT.FAILED
  },
}
