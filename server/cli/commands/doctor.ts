import { loadConfig, type Config } from '../../config.ts'
import { checkHealth, type HealthReport } from '../../engine/health.ts'
import { identityMismatch } from '../../engine/pg/age.ts'
import { GLOBAL_HELP, parseCommandArgs, UsageError, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { formatBytes, plural, printJson } from '../output.ts'

interface Check { name: string, ok: boolean, detail: string }

/** The health report in doctor's words: one line per check, each naming where it looked. */
function doctorChecks (report: HealthReport, config: Config): Check[] {
  const tools = report.tools.map(t => t.ok
    ? { name: t.name, ok: true, detail: `${t.version} (${t.path})` }
    : { name: t.name, ok: false, detail: t.error.message })
  const targets = report.targets.map(t => {
    const c = config.targets[t.name]
    const where = `${c.user}@${c.host}:${c.port}/${c.database}`
    return t.ok
      ? { name: `target ${t.name}`, ok: true, detail: `${where}: PostgreSQL ${t.server.version}` }
      : { name: `target ${t.name}`, ok: false, detail: `${where}: ${t.error.message}` }
  })
  const storages = report.storages.map(s => s.ok
    ? { name: `${s.role} storage`, ok: true, detail: `${s.url}: reachable, credentials valid, a probe object written and deleted` }
    : { name: `${s.role} storage`, ok: false, detail: `${s.url}: ${s.error.message}` })
  const { path, writable, freeSpace } = report.backupDir
  if (!writable.ok) {
    const cause = writable.error.cause as NodeJS.ErrnoException | undefined
    return [...tools, ...targets, { name: 'backups dir', ok: false, detail: `${path}: not writable (${cause?.code ?? writable.error.message})` }, ...storages]
  }
  return [...tools, ...targets, ...storages,
    { name: 'backups dir', ok: true, detail: `${path} is writable` },
    'error' in freeSpace
      ? { name: 'free space', ok: false, detail: freeSpace.error.message }
      : { name: 'free space', ok: freeSpace.ok, detail: `${formatBytes(freeSpace.freeBytes)} free, minimum ${formatBytes(freeSpace.minFreeBytes)}` },
  ]
}

/** Encryption's keys: who new backups go to, and whether the identity can read them (a mismatch is only a note: rotation). */
async function encryptionChecks (config: Config): Promise<Check[]> {
  const e = config.encryption
  if (e === undefined) return []
  const to = e.recipients.length > 0 ? `new backups encrypted to ${plural(e.recipients.length, 'age recipient')}` : 'new backups are not encrypted'
  if (e.identityFile === undefined) return [{ name: 'encryption', ok: true, detail: `${to}; no identity file: encrypted backups can be listed, downloaded and checksummed, not restored here` }]
  try {
    const note = await identityMismatch(e.identityFile, e.recipients)
    return [{ name: 'encryption', ok: true, detail: `${to}; ${note ?? `the identity file ${e.identityFile} opens them`}` }]
  } catch (err) {
    return [{ name: 'encryption', ok: false, detail: (err as Error).message }]
  }
}

export const command: Command = {
  name: 'doctor',
  help: `Usage: pgkeep doctor [--json]

Checks that pg_dump, pg_restore, psql and zstd (and age, when encryption is configured) are installed (with versions), that every target
answers and that pg_dump is at least as new as its server, that the backups directory is writable
and that it has at least minFreeBytes free, and that every other storage (PGKEEP_STORAGE, copies) is
reachable with valid credentials and takes a probe object (written and deleted under its prefix). One line per check; exits 1 if any check fails.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { globals } = parseCommandArgs(argv, {}, io)
    if (globals.server) throw new UsageError('doctor checks the local machine; it does not take --server')
    const config = loadConfig(io.env)
    // age is needed only where backups are encrypted or read back encrypted
    const age = config.encryption !== undefined ? ['age' as const] : []
    const checks = doctorChecks(await checkHealth(config, { tools: ['pg_restore', 'psql', 'zstd', ...age], createBackupDir: true }), config)
    checks.push(...await encryptionChecks(config))
    const ok = checks.every(c => c.ok)
    if (globals.json) printJson(io, { ok, checks })
    else {
      const w = Math.max(...checks.map(c => c.name.length))
      for (const c of checks) io.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(w)}  ${c.detail}\n`)
    }
    return ok ? EXIT.OK : EXIT.FAILED
  },
}
