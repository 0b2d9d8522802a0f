// Issue 14 benchmark: backups of N small databases through the shared queue, run by 3 pgkeep instances against 1,
// each instance a process of its own with the same worker slots (PGKEEP_CONCURRENCY), one catalog, one storage
// dir. An API-only instance (worker 'none') queues them all at once and waits; the clock runs from the first
// create to the last completion. Real pg_dump and zstd: on 2 cores they are what limits it, not the queue
// (bench/catalog-queue.ts measures the queue alone).
// Size by BENCH_INSTANCE_DATABASES (default 30), BENCH_INSTANCE_ROWS (rows per database, 20000) and
// BENCH_INSTANCE_SLOTS (worker slots per instance, 1).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../server/config.ts'
import { BackupService } from '../server/engine/backup-service.ts'
import { startCluster, type TestCluster } from '../test/helpers/pg-cluster.ts'
import { line } from './measure.ts'

const count = Number(process.env.BENCH_INSTANCE_DATABASES ?? 30)
const rows = Number(process.env.BENCH_INSTANCE_ROWS ?? 20_000)
const slots = Number(process.env.BENCH_INSTANCE_SLOTS ?? 1)
const databases = Array.from({ length: count }, (_, i) => `bench_inst_${String(i).padStart(2, '0')}`)

async function startInstance (env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/catalog-worker.ts')], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', d => { out += String(d); if (out.includes('READY')) resolve() })
    child.once('exit', code => { reject(new Error(`an instance exited (${code}) before it was ready`)) })
  })
  return child
}

async function round (cluster: TestCluster, work: string, instances: number, n: number): Promise<{ ms: number, perInstance: number[] }> {
  const catalog = `bench_inst_catalog_${instances}_${n}`
  await cluster.createDatabase(catalog)
  const env = {
    ...process.env,
    PGKEEP_CONFIG: join(work, 'config.json'),
    PGKEEP_CATALOG_URL: cluster.url(catalog),
    PGKEEP_BACKUP_DIR: join(work, `backups-${instances}-${n}`),
    PGKEEP_PG_BIN_DIR: cluster.binDir,
    PGKEEP_CONCURRENCY: String(slots),
  }
  const children: ChildProcess[] = []
  for (let i = 0; i < instances; i++) children.push(await startInstance(env))
  const api = await BackupService.open(loadConfig(env), { worker: 'none' })
  try {
    const started = performance.now()
    const queued = []
    for (const target of databases) queued.push(await api.create({ target }, 'bench'))
    const ended = await Promise.all(queued.map(async b => await api.waitFor(b.id)))
    const ms = performance.now() - started
    const failed = ended.filter(b => b.status !== 'completed')
    if (failed.length > 0) throw new Error(`${failed.length} backups did not complete: ${failed[0].error?.message}`)
    const byInstance = new Map<string, number>()
    for (const b of ended) byInstance.set(b.instance ?? '?', (byInstance.get(b.instance ?? '?') ?? 0) + 1)
    return { ms, perInstance: [...byInstance.values()] }
  } finally {
    await api.close()
    for (const c of children) c.kill('SIGTERM')
    await Promise.all(children.map(async c => await new Promise(resolve => { if (c.exitCode !== null) resolve(null); else c.once('exit', resolve) })))
  }
}

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-instances-'))
try {
  console.log(`filling ${count} databases of ${rows} rows each...`)
  for (const db of databases) {
    await cluster.createDatabase(db)
    await cluster.psql(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g; ANALYZE t`, db)
  }
  writeFileSync(join(work, 'config.json'), JSON.stringify({ targets: Object.fromEntries(databases.map(d => [d, { url: cluster.url(d) }])) }))
  console.log(`${count} backups, ${slots} worker slot(s) per instance, one catalog and one storage dir on this machine`)
  const results: Record<number, number> = {}
  for (const [n, instances] of [1, 3, 1, 3].entries()) {
    const r = await round(cluster, work, instances, n)
    results[instances] = Math.min(results[instances] ?? Infinity, r.ms)
    line(`${instances} instance(s), run ${Math.floor(n / 2) + 1}`, `${(count / r.ms * 1000).toFixed(2)} backups/s (${(r.ms / 1000).toFixed(2)} s; backups per instance ${r.perInstance.join('/')})`)
  }
  line('3 vs 1 (best of 2 each)', `x${(results[1] / results[3]).toFixed(2)} (target: more than 1; 3 slots on 2 cores)`)
} finally {
  await cluster.stop()
  rmSync(work, { recursive: true, force: true })
}
