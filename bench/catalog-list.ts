// Issue 14 benchmark: GET /api/backup/list p99 at 100,000 backups (target < 20 ms), with the registry in the
// PostgreSQL catalog and in registry.json. Lists are served from each instance's memory either way; the figures
// beside show what the catalog costs: loading 100,000 records at start-up and one update (a put) at that size.
// BENCH_CATALOG_COUNT changes the number of backups.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CatalogDb } from '../server/catalog/catalog-db.ts'
import { Registry } from '../server/engine/store/registry.ts'
import { fakeBackup } from './fake-backups.ts'
import { percentile, startBenchServer, startCluster, type BenchServer } from './http-setup.ts'
import { line } from './measure.ts'

const count = Number(process.env.BENCH_CATALOG_COUNT ?? 100_000)
const QUERIES = [
  '', '?page=40&pageSize=50', '?status=failed', '?q=alice&sort=sizeBytes&order=asc', '?target=t3&sort=duration',
  '?from=2025-06-01T00:00:00Z&to=2025-07-01T00:00:00Z', '?pageSize=500',
]

async function listP99 (label: string, server: BenchServer): Promise<void> {
  const headers = { authorization: `Bearer ${server.token}` }
  const get = async (q: string): Promise<number> => {
    const started = performance.now()
    const res = await fetch(`http://${server.baseUrl}/api/backup/list${q}`, { headers })
    const body = await res.json() as { total: number }
    if (res.status !== 200) throw new Error(`list${q} answered ${res.status}`)
    if (q === '' && body.total < count) throw new Error(`the ${label} list holds ${body.total} backups, not ${count}`)
    return performance.now() - started
  }
  for (let i = 0; i < 50; i++) await get(QUERIES[i % QUERIES.length]) // JIT and connection warm-up
  const all: number[] = []
  for (let i = 0; i < 1400; i++) all.push(await get(QUERIES[i % QUERIES.length]))
  all.sort((a, b) => a - b)
  line(`  ${label}: GET /api/backup/list p50`, `${percentile(all, 50).toFixed(1)} ms`)
  const p99 = percentile(all, 99)
  line(`  ${label}: GET /api/backup/list p99`, `${p99.toFixed(1)} ms`, '< 20 ms', p99 < 20)
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await fn()
  return performance.now() - started
}

const records = Array.from({ length: count }, (_, i) => fakeBackup(i))
console.log(`${count} backups, 1400 sequential list requests over loopback per catalog (client in-process)`)

const fileDir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-catalog-file-'))
try {
  const fill = await timed(async () => { await (await Registry.open(fileDir)).update(all => { for (const b of records) all.set(b.id, b) }) })
  line('registry.json: writing them all', `${(fill / 1000).toFixed(1)} s`)
  const registry = await Registry.open(fileDir)
  line('registry.json: one put at this size', `${(await timed(async () => { await registry.put(fakeBackup(count)) })).toFixed(0)} ms`)
  const server = await startBenchServer({ backupDir: fileDir })
  try { await listP99('registry.json', server) } finally { await server.close() }
} finally {
  rmSync(fileDir, { recursive: true, force: true })
}

const cluster = await startCluster()
const pgDir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-catalog-pg-'))
try {
  await cluster.createDatabase('bench_catalog')
  const target = { name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'bench_catalog' }
  const db = await CatalogDb.open(target)
  try {
    const fill = await timed(async () => {
      const writer = await Registry.open(pgDir, { catalog: db })
      await writer.update(all => { for (const b of records) all.set(b.id, b) })
      await writer.close()
    })
    line('catalog: writing them all', `${(fill / 1000).toFixed(1)} s`)
    let registry: Registry | undefined
    line('catalog: opening a view (loads every record)', `${(await timed(async () => { registry = await Registry.open(pgDir, { catalog: db }) })).toFixed(0)} ms`)
    line('catalog: one put at this size', `${(await timed(async () => { await registry?.put(fakeBackup(count)) })).toFixed(0)} ms`)
    await registry?.close()
  } finally {
    await db.close()
  }
  const server = await startBenchServer({ backupDir: pgDir, env: { PGKEEP_CATALOG_URL: cluster.url('bench_catalog') } })
  try { await listP99('catalog', server) } finally { await server.close() }
} finally {
  rmSync(pgDir, { recursive: true, force: true })
  await cluster.stop()
}
