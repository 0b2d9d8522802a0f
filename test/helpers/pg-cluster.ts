import { execFile, execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A throwaway PostgreSQL cluster: initdb'd into a temp dir, random port, stopped by stop(). */
export interface TestCluster {
  host: string
  port: number
  user: string
  password: string
  socketDir: string
  binDir: string
  /** postgres://postgres:<password>@127.0.0.1:<port>/<db> */
  url (database?: string): string
  /** runs SQL through psql (unaligned, tuples only) and returns stdout */
  psql (sql: string, database?: string): Promise<string>
  createDatabase (name: string): Promise<void>
  stop (): Promise<void>
  /** startCluster() only: the server stops (fast) and later starts again on the same port, data kept (a catalog outage) */
  serverDown?: () => Promise<void>
  serverUp?: () => Promise<void>
}

/** The newest PostgreSQL on the machine: its server runs the run's cluster, its client tools talk to every test server. */
export function findPgBinDir (): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter(v => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin')
  throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin')
}

const isRoot = process.getuid?.() === 0
let postgresIds: { uid: number, gid: number } | undefined
function postgresUser (): { uid: number, gid: number } {
  postgresIds ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  }
  return postgresIds
}

/** PostgreSQL refuses to run as root, so as root every server command runs as the postgres user. */
function asServerUser (cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
}

function giveToServerUser (path: string): void {
  if (!isRoot) return
  const { uid, gid } = postgresUser()
  chownSync(path, uid, gid)
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')))
    })
  })
}

export const TEST_PASSWORD = 'pgkeep-test-Secr3t!'

/** Which server to run: the machine's (the default), or another version's initdb/pg_ctl/postgres (see pg-versions.ts). */
export interface ServerBinaries {
  /** holds initdb, pg_ctl and postgres */
  binDir: string
  /** names the template data dir made once per machine, so one per server version, e.g. "pg15" */
  label: string
}

function machineServer (): ServerBinaries {
  const binDir = findPgBinDir()
  return { binDir, label: `pg${binDir.split('/').at(-2) ?? 'x'}` }
}

/**
 * initdb is the slow part (~2 s), so one template data dir per machine (and server version) is made once and copied.
 * The superuser has a password and TCP connections require it, so the passfile path is exercised.
 */
async function templateDataDir ({ binDir, label }: ServerBinaries): Promise<string> {
  const template = join(tmpdir(), `pgkeep-test-template-${label}-v1`)
  if (existsSync(join(template, 'PG_VERSION'))) return template
  const work = mkdtempSync(join(tmpdir(), 'pgkeep-template-'))
  giveToServerUser(work)
  const pwfile = join(work, 'pw')
  writeFileSync(pwfile, TEST_PASSWORD + '\n', { mode: 0o600 })
  giveToServerUser(pwfile)
  const data = join(work, 'data')
  const [cmd, args] = asServerUser(join(binDir, 'initdb'), [
    '-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256',
    '--encoding=UTF8', '--locale=C', '--no-sync',
  ])
  await run(cmd, args)
  try {
    renameSync(data, template)
  } catch (err) {
    // another test process won the race: theirs is as good as ours
    if (!existsSync(join(template, 'PG_VERSION'))) throw err
  }
  rmSync(work, { recursive: true, force: true })
  return template
}

/**
 * Where a running server lives: enough to talk to it from any process, and to stop it. binDir holds the client
 * tools tests use (the machine's); serverBinDir, when the server is another version, holds its pg_ctl.
 */
interface ServerInfo { root: string, data: string, socketDir: string, binDir: string, serverBinDir?: string, port: number, startOptions: string }

const pgCtlOf = (info: ServerInfo): string => join(info.serverBinDir ?? info.binDir, 'pg_ctl')

async function startServer (opts: { maxConnections: number, server?: ServerBinaries }): Promise<ServerInfo> {
  const binDir = findPgBinDir()
  const server = opts.server ?? machineServer()
  const template = await templateDataDir(server)
  const root = mkdtempSync(join(tmpdir(), 'pgkeep-test-pg-'))
  giveToServerUser(root)
  const data = join(root, 'data')
  const socketDir = join(root, 'sock')
  mkdirSync(socketDir)
  giveToServerUser(socketDir)
  cpSync(template, data, { recursive: true })
  // Node 24's cpSync creates the top directory with the umask's mode; PostgreSQL insists on 0700
  chmodSync(data, 0o700)
  if (isRoot) await run('chown', ['-R', 'postgres:postgres', data])
  const port = await freePort()
  const opts_ = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=${opts.maxConnections}`
  const [cmd, args] = asServerUser(join(server.binDir, 'pg_ctl'), ['-D', data, '-o', opts_, '-l', join(root, 'server.log'), '-w', 'start'])
  await run(cmd, args)
  return { root, data, socketDir, binDir, ...(server.binDir === binDir ? {} : { serverBinDir: server.binDir }), port, startOptions: opts_ }
}

function stopServerSync (info: ServerInfo): void {
  try { execFileSync(...asServerUser(pgCtlOf(info), ['-D', info.data, '-m', 'immediate', 'stop']), { stdio: 'ignore' }) } catch {}
  rmSync(info.root, { recursive: true, force: true })
}

function clusterOf (info: ServerInfo, stop: () => Promise<void>): TestCluster {
  const { port, socketDir, binDir } = info
  const psql = async (sql: string, database = 'postgres'): Promise<string> => {
    // over the unix socket with trust auth: the test harness itself never needs the password
    const { stdout } = await run(join(binDir, 'psql'), [
      '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', database, '-c', sql,
    ], { maxBuffer: 256 * 1024 * 1024 })
    return stdout
  }
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: TEST_PASSWORD,
    socketDir,
    binDir,
    url: (database = 'postgres') => `postgres://postgres:${encodeURIComponent(TEST_PASSWORD)}@127.0.0.1:${port}/${database}`,
    psql,
    // never IF NOT EXISTS: on the run's shared cluster a name taken by another test file must fail loudly
    createDatabase: async (name) => { await psql(`CREATE DATABASE "${name.replace(/"/g, '""')}"`) },
    stop,
  }
}

/**
 * A cluster of this process's own, stopped by stop() (or, if a test crashes first, when the process exits).
 * For tests that stop, restart or reconfigure their server, or need a cluster-wide state of their own
 * (roles, every database); everything else shares the run's cluster through testCluster().
 * `server` runs another version's server (pg-versions.ts); psql and binDir stay the machine's client tools.
 */
export async function startCluster (server?: ServerBinaries): Promise<TestCluster> {
  const info = await startServer({ maxConnections: 60, server })
  const onExit = (): void => stopServerSync(info)
  // last resort if a test crashed before teardown: never leave a server behind
  process.once('exit', onExit)
  const cluster = clusterOf(info, async () => {
    process.off('exit', onExit)
    const [c, a] = asServerUser(pgCtlOf(info), ['-D', info.data, '-m', 'immediate', '-w', 'stop'])
    await run(c, a).catch(() => {})
    rmSync(info.root, { recursive: true, force: true })
  })
  cluster.serverDown = async () => { await run(...asServerUser(pgCtlOf(info), ['-D', info.data, '-m', 'fast', '-w', 'stop'])) }
  cluster.serverUp = async () => {
    await run(...asServerUser(pgCtlOf(info), ['-D', info.data, '-o', info.startOptions, '-l', join(info.root, 'server.log'), '-w', 'start']))
  }
  return cluster
}

/** The tap runner's pid: the before/after scripts and every test file are its children. */
const runFile = (runnerPid: number): string => join(tmpdir(), `pgkeep-test-run-${runnerPid}.json`)

/**
 * The cluster of this test run (one per `npm test`, started by test/helpers/run-cluster.ts before the first file):
 * test files share it, each in databases of its own names, and its stop() does nothing. A file run on its own,
 * outside tap, gets a private cluster instead.
 */
export async function testCluster (): Promise<TestCluster> {
  let info: ServerInfo | undefined
  try { info = JSON.parse(readFileSync(runFile(process.ppid), 'utf8')) as ServerInfo } catch {}
  if (info === undefined) return await startCluster()
  return clusterOf(info, async () => {})
}

/** Starts the run's cluster and a watchdog that stops it if the runner dies without running the after script. */
export async function startRunCluster (runnerPid: number): Promise<void> {
  const info = await startServer({ maxConnections: 300 })
  writeFileSync(runFile(runnerPid), JSON.stringify(info), { mode: 0o600 })
  const [cmd, args] = asServerUser(pgCtlOf(info), ['-D', info.data, '-m', 'immediate', 'stop'])
  const stop = [cmd, ...args].map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const watchdog = `while kill -0 ${runnerPid} 2>/dev/null; do sleep 2; done; ${stop} >/dev/null 2>&1; rm -rf '${info.root}' '${runFile(runnerPid)}'`
  spawn('sh', ['-c', watchdog], { detached: true, stdio: 'ignore' }).unref()
}

export function stopRunCluster (runnerPid: number): void {
  let info: ServerInfo
  try { info = JSON.parse(readFileSync(runFile(runnerPid), 'utf8')) as ServerInfo } catch { return }
  stopServerSync(info)
  rmSync(runFile(runnerPid), { force: true })
}
