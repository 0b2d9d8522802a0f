// Issue 12 target 6, on its own: `pgkeep validate` against the bare `sha256sum F && zstd -dc F | pg_restore -f
// /dev/null` of the same file (bench/dump.ts prints the same ratio among all its figures; this one is quick to
// rerun while working on the validator). Size by BENCH_SIZE_MB (default 1024, in SQL form), BENCH_RUNS runs of
// each, alternated so that a change in the machine's load hits both alike; the best of each counts, as noise
// only ever adds time. CPU seconds (user + system of the whole process tree) are steadier than wall time on a
// shared machine; both are printed, with the load average.
import { loadavg, tmpdir } from 'node:os'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { startCluster } from '../test/helpers/pg-cluster.ts'
import { fillDatabase } from './http-setup.ts'
import { fmtMs, line, runMeasured, type RunResult } from './measure.ts'

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024)
const runs = Number(process.env.BENCH_RUNS ?? 5)
const root = join(import.meta.dirname, '..')

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-validate-'))
try {
  console.log(`filling a ~${sizeMb} MB database...`)
  await fillDatabase(cluster, 'bench', sizeMb)
  await cluster.createDatabase('bench_tiny')
  await cluster.psql("CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 100) g", 'bench_tiny')
  await runMeasured(process.execPath, [join(root, 'bin/build.js')])
  const pgkeep = async (db: string, args: string[]): Promise<RunResult> => await runMeasured(process.execPath, [join(root, 'bin/pgkeep.js'), ...args], {
    env: { PATH: process.env.PATH, DATABASE_URL: cluster.url(db), PGKEEP_BACKUP_DIR: join(work, db), PGKEEP_PG_BIN_DIR: cluster.binDir },
  })
  const create = async (db: string): Promise<{ id: string, name: string, sizeBytes: number, rawBytes: number }> => JSON.parse((await pgkeep(db, ['create', '--json'])).stdout)
  const record = await create('bench')
  const tiny = await create('bench_tiny')
  const pgRestore = join(cluster.binDir, 'pg_restore')
  const bareOf = (file: string) => async (): Promise<RunResult> => await runMeasured('sh', ['-c', `sha256sum ${file} > /dev/null && zstd -dc ${file} | ${pgRestore} -f /dev/null`])
  const bare = bareOf(join(work, 'bench', record.name))
  const validate = async (): Promise<RunResult> => await pgkeep('bench', ['validate', record.id, '--json'])
  const validateTiny = async (): Promise<RunResult> => await pgkeep('bench_tiny', ['validate', tiny.id, '--json'])
  const bareTiny = bareOf(join(work, 'bench_tiny', tiny.name))

  const results: Record<'bare' | 'validate' | 'tiny' | 'bareTiny', RunResult[]> = { bare: [], validate: [], tiny: [], bareTiny: [] }
  await bare() // the page cache warm for both
  for (let i = 0; i < runs; i++) {
    const order: Array<'bare' | 'validate'> = i % 2 === 0 ? ['bare', 'validate'] : ['validate', 'bare']
    for (const name of order) {
      const r = await (name === 'bare' ? bare() : validate())
      if (r.code !== 0) throw new Error(`${name} exited ${r.code}`)
      if (name === 'validate' && !(JSON.parse(r.stdout) as { verification?: { ok: boolean } }).verification?.ok) throw new Error(`validate failed: ${r.stdout}`)
      results[name].push(r)
    }
    results.tiny.push(await validateTiny())
    results.bareTiny.push(await bareTiny())
  }
  const bestMs = (rs: RunResult[]): number => Math.min(...rs.map(r => r.ms))
  const bestCpu = (rs: RunResult[]): number => Math.min(...rs.map(r => r.cpuMs))
  const show = (rs: RunResult[]): string => `${fmtMs(bestMs(rs))}, cpu ${(bestCpu(rs) / 1000).toFixed(2)} s (best of ${rs.length})`
  console.log(`\nvalidate, ${sizeMb} MB database (${(record.sizeBytes / 1048576).toFixed(1)} MB stored, ${(record.rawBytes / 1048576).toFixed(1)} MB raw), load average ${loadavg().map(x => x.toFixed(1)).join(' ')}, ${new Date().toISOString()}`)
  line('pgkeep validate (CLI, from its bundle)', show(results.validate))
  line('bare: sha256sum F && zstd -dc F | pg_restore', show(results.bare))
  line('pgkeep validate of a tiny backup (the fixed cost)', show(results.tiny))
  line('bare tools on the tiny backup', show(results.bareTiny))
  const ratio = bestMs(results.validate) / bestMs(results.bare)
  const cpuRatio = bestCpu(results.validate) / bestCpu(results.bare)
  line('ratio validate / bare (wall)', ratio.toFixed(3), '<= 1.10', ratio <= 1.1)
  line('ratio validate / bare (cpu)', cpuRatio.toFixed(3), '<= 1.10', cpuRatio <= 1.1)
  // what grows with the size: the figure a 1 GB run is made of
  const perByte = (bestCpu(results.validate) - bestCpu(results.tiny)) / (bestCpu(results.bare) - bestCpu(results.bareTiny))
  line('    cpu beyond the fixed cost, validate / bare', perByte.toFixed(3), '<= 1.10', perByte <= 1.1)
} finally {
  rmSync(work, { recursive: true, force: true })
  await cluster.stop()
}
