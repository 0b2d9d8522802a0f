import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import type { Test } from 'tap'
import { ApiClient } from './api-client.ts'
import { login, openBrowser, type BrowserSession } from './browser.ts'
import { newApp, appConfig } from '../../helpers/app.ts'
import { testCluster, type TestCluster } from '../../helpers/pg-cluster.ts'
import { testConfig } from '../../helpers/sample-db.ts'
import type { Config } from '../../../server/config.ts'

const run = promisify(execFile)
const repo = fileURLToPath(new URL('../../../', import.meta.url))
export const ARTIFACTS = join(repo, 'test-artifacts')

export const ADMIN = { username: 'alice', password: 'alice-Passw0rd!' }
export const VIEWER = { username: 'victor', password: 'victor-Passw0rd!' }

export interface Stack {
  cluster: TestCluster
  /** the database the stack's target backs up, named by the test file (the run's cluster is shared) */
  database: string
  config: Config
  backupDir: string
  url: string
  /** closes the HTTP server and starts a fresh one on the same port (same backups dir, same secret) */
  restart (): Promise<void>
  stop (): Promise<void>
}

/**
 * `tables` tables of poorly compressible text (`mbPerTable` each). gzip -9 runs in-process behind
 * backpressure, so it paces pg_dump itself: ~25 MB take several seconds and move table by table.
 * (zstd -T0 would swallow the whole input at once and leave the bar parked near the end.)
 */
export async function fillDatabase (cluster: TestCluster, database: string, tables = 8, mbPerTable = 3): Promise<void> {
  await cluster.createDatabase(database)
  const rows = Math.round(mbPerTable * 1024 * 1024 / 132)
  const sql = Array.from({ length: tables }, (_, i) => `
    CREATE TABLE public.part_${i} AS
      SELECT g AS id, md5(g::text || '${i}') || md5((g * 31)::text) || md5((g * 17 + ${i})::text) || md5((g * 7)::text) AS body
      FROM generate_series(1, ${rows}) g;`).join('\n')
  await cluster.psql(sql + '\nANALYZE;', database)
}

function sourcesHash (): string {
  const hash = createHash('sha256')
  const files = [join(repo, 'vite.config.ts'), ...readdirSync(join(repo, 'client'), { recursive: true, encoding: 'utf8' }).map(f => join(repo, 'client', f))]
  for (const f of files.sort()) if (statSync(f).isFile()) hash.update(f).update(readFileSync(f))
  for (const f of readdirSync(join(repo, 'schemas')).sort()) hash.update(f).update(readFileSync(join(repo, 'schemas', f)))
  return hash.digest('hex').slice(0, 16)
}

/**
 * The dashboard as built from the current sources, built once per source state: into a private temp
 * dir first (browser test files run in parallel), then renamed into place, so nobody serves half a build.
 */
async function buildClient (): Promise<string> {
  const dir = join(ARTIFACTS, `client-${sourcesHash()}`)
  if (existsSync(join(dir, 'index.html'))) return dir
  const out = mkdtempSync(join(tmpdir(), 'pgkeep-client-'))
  await run(join(repo, 'node_modules/.bin/vite'), ['build', '--outDir', out, '--emptyOutDir', '--logLevel', 'error'], { cwd: repo })
  try {
    renameSync(out, dir)
  } catch {
    // a parallel test file finished first (or /tmp is another filesystem): serve ours from where it is
    return existsSync(join(dir, 'index.html')) ? (rmSync(out, { recursive: true, force: true }), dir) : out
  }
  return dir
}

/** catalog: a database (made here) for a shared PostgreSQL catalog; without it the catalog is files in the backups dir */
export async function startStack (opts: { database: string, tables?: number, mbPerTable?: number, catalog?: string }): Promise<Stack> {
  const t0 = Date.now()
  mkdirSync(ARTIFACTS, { recursive: true })
  const [cluster, clientDir] = await Promise.all([testCluster(), buildClient()])
  const t1 = Date.now()
  await fillDatabase(cluster, opts.database, opts.tables, opts.mbPerTable)
  if (opts.catalog !== undefined) await cluster.createDatabase(opts.catalog)
  if (process.env.PGKEEP_TEST_TIMING) process.stderr.write(`stack: cluster+client ${t1 - t0} ms, fill ${Date.now() - t1} ms\n`)
  const env: Record<string, string> = opts.catalog !== undefined ? { PGKEEP_CATALOG_URL: cluster.url(opts.catalog) } : {}
  const config = appConfig({ ...testConfig(cluster, opts.database, env), logLevel: 'warn' })

  // a login limit a browser test can meet, unlike build(t)'s
  const deps = { clientDir, rateLimits: { global: 100_000, login: 1000, loginPerUser: 1000, create: 1000 }, cancelRunningOnClose: true }
  let app: FastifyInstance = await newApp(config, deps)
  // through the app, so they land wherever its users live (the backups dir or the catalog)
  await app.users.add(ADMIN.username, 'admin', ADMIN.password)
  await app.users.add(VIEWER.username, 'viewer', VIEWER.password)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('server has no TCP address')
  const port = address.port

  return {
    cluster,
    database: opts.database,
    config,
    backupDir: config.backupDir,
    url: `http://127.0.0.1:${port}`,
    restart: async () => {
      await app.close()
      app = await newApp(config, deps)
      await app.listen({ host: '127.0.0.1', port })
    },
    stop: async () => {
      await app.close().catch(() => {})
      await cluster.stop()
      rmSync(config.backupDir, { recursive: true, force: true })
    },
  }
}

/**
 * What most browser suites start with: a stack, an API client logged in as the admin, and one admin browser
 * already logged in (launching Chromium and logging in dominate a browser test's time, so suites share it).
 * Page errors are collected for the suite to assert on.
 */
export async function startAdminStack (t: Test, opts: Parameters<typeof startStack>[0]): Promise<{ stack: Stack, admin: ApiClient, session: BrowserSession, page: Page, pageErrors: string[] }> {
  const stack = await startStack(opts)
  t.teardown(stack.stop)
  const admin = await ApiClient.login(stack.url, ADMIN)
  const session = await openBrowser(stack.url)
  t.teardown(session.close)
  const pageErrors: string[] = []
  session.page.on('pageerror', e => pageErrors.push(e.message))
  await login(session.page, ADMIN.username, ADMIN.password)
  return { stack, admin, session, page: session.page, pageErrors }
}
