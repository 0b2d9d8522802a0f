// Shared by the HTTP benches: a throwaway cluster with a database of a chosen size, and a listening app.
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type Config } from '../server/config.ts'
import { buildApp } from '../server/http/app.ts'
import { startCluster, type TestCluster } from '../test/helpers/pg-cluster.ts'

export const BENCH_JWT_SECRET = 'pgkeep-bench-jwt-secret-0123456789abcdef'
export const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024)

/** md5 text rows, roughly `mb` MB of table data. */
export async function fillDatabase (cluster: TestCluster, db: string, mb: number): Promise<void> {
  await cluster.createDatabase(db)
  await cluster.psql('CREATE TABLE payload (id bigint PRIMARY KEY, a text, b text, c text)', db)
  const rows = Math.ceil(mb * 1024 * 1024 / (3 * 64 + 12))
  for (let from = 1; from <= rows; from += 500_000) {
    const to = Math.min(rows, from + 499_999)
    await cluster.psql(`INSERT INTO payload SELECT g, md5(random()::text) || md5(random()::text), md5(random()::text) || md5(g::text), md5(random()::text) || md5(random()::text) FROM generate_series(${from}, ${to}) g`, db)
  }
  await cluster.psql('VACUUM ANALYZE', db)
}

export interface BenchServer {
  cluster?: TestCluster
  config: Config
  app: FastifyInstance
  baseUrl: string
  token: string
  close: () => Promise<void>
}

/** A listening app on a fresh backups dir; with a cluster, its `default` target is `db` there. */
export async function startBenchServer (opts: { cluster?: TestCluster, db?: string, backupDir?: string, env?: Record<string, string> } = {}): Promise<BenchServer> {
  const backupDir = opts.backupDir ?? mkdtempSync(join(tmpdir(), 'pgkeep-bench-http-'))
  const config = loadConfig({
    PATH: process.env.PATH,
    DATABASE_URL: opts.cluster ? opts.cluster.url(opts.db ?? 'postgres') : 'postgres://nobody@127.0.0.1:1/none',
    PGKEEP_BACKUP_DIR: backupDir,
    PGKEEP_JWT_SECRET: BENCH_JWT_SECRET,
    PGKEEP_LOG_LEVEL: 'warn',
    ...(opts.cluster ? { PGKEEP_PG_BIN_DIR: opts.cluster.binDir } : {}),
    ...opts.env,
  })
  const app = await buildApp(config, { logStream: { write () {} }, rateLimits: { global: 10_000_000, create: 10_000_000, login: 1000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const token = (await app.tokens.create(BENCH_JWT_SECRET, { name: 'bench', role: 'admin', createdBy: 'bench' })).token
  return {
    cluster: opts.cluster,
    config,
    app,
    baseUrl: `127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    token,
    close: async () => {
      await app.close()
      if (!opts.backupDir) rmSync(backupDir, { recursive: true, force: true })
    },
  }
}

export { startCluster }

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}
