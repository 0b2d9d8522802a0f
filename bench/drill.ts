// Issue 11 benchmark: what countRows costs a dump (the counting session scans every table again, in the dump's
// snapshot, while pg_dump runs), and how long a drill takes next to the restore it measures.
// Size by BENCH_SIZE_MB (default 1024, in SQL form); runs pgkeep as the CLI does, over a cluster of its own.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCluster, type TestCluster } from '../test/helpers/pg-cluster.ts'
import { fmtMs, line, runMeasured } from './measure.ts'

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024)
const root = join(import.meta.dirname, '..')

async function fillDatabase (cluster: TestCluster, db: string, mb: number): Promise<void> {
  await cluster.createDatabase(db)
  await cluster.psql('CREATE TABLE payload (id bigint PRIMARY KEY, a text, b text); CREATE TABLE small (id int, v text)', db)
  const rows = Math.ceil(mb * 1024 * 1024 / (2 * 64 + 12))
  for (let from = 1; from <= rows; from += 500_000) {
    await cluster.psql(`INSERT INTO payload SELECT g, md5(random()::text) || md5(g::text), md5(random()::text) || md5(random()::text) FROM generate_series(${from}, ${Math.min(rows, from + 499_999)}) g`, db)
  }
  await cluster.psql("INSERT INTO small SELECT g, 'x' || g FROM generate_series(1, 1000) g", db)
  await cluster.psql('VACUUM ANALYZE', db)
}

async function pgkeep (cluster: TestCluster, backupDir: string, args: string[]): Promise<{ ms: number, json: Record<string, unknown> }> {
  const r = await runMeasured(process.execPath, [join(root, 'bin/pgkeep.js'), ...args, '--json'], {
    env: { PATH: process.env.PATH, DATABASE_URL: cluster.url('bench'), PGKEEP_BACKUP_DIR: backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir },
  })
  if (r.code !== 0) throw new Error(`pgkeep ${args.join(' ')} exited ${r.code}`)
  return { ms: r.ms, json: JSON.parse(r.stdout) }
}

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-drill-'))
try {
  console.log(`filling a ~${sizeMb} MB database...`)
  await fillDatabase(cluster, 'bench', sizeMb)
  const dir = join(work, 'backups')
  await pgkeep(cluster, dir, ['create'])
  // best of two each, alternating, so the page cache favours neither
  const plain: number[] = []
  const counted: number[] = []
  for (let i = 0; i < 2; i++) {
    plain.push((await pgkeep(cluster, dir, ['create'])).ms)
    counted.push((await pgkeep(cluster, dir, ['create', '--count-rows'])).ms)
  }
  const base = Math.min(...plain)
  const withCounts = Math.min(...counted)
  const overhead = (withCounts - base) / base * 100
  line('create (zstd, custom)', fmtMs(base))
  line('create --count-rows', fmtMs(withCounts))
  line('countRows overhead', `${overhead.toFixed(1)} %`, '< 25 %', overhead < 25)
  const drill = await pgkeep(cluster, dir, ['drill'])
  const restoreMs = Number(drill.json.restoreMs)
  line('drill: restore (the measured RTO)', fmtMs(restoreMs))
  line('drill: total (restore + checks + drop)', fmtMs(Number(drill.json.durationMs)))
  line('drill: checks and drop on top of the restore', `${((Number(drill.json.durationMs) - restoreMs) / restoreMs * 100).toFixed(1)} %`)
  if (drill.json.status !== 'passed') throw new Error(`the drill ended ${String(drill.json.status)}`)
} finally {
  rmSync(work, { recursive: true, force: true })
  await cluster.stop()
}
