// Issue 10 benchmark: a backup set of N small databases (one `pgkeep create --all-databases`) against N separate
// creates of the same databases, in-process (the engine alone) and as an admin scripts it (one CLI process each).
// Target: the set is not slower. Size by BENCH_SET_DATABASES (default 20) and BENCH_SET_ROWS (rows per database, 20000).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCluster } from '../test/helpers/pg-cluster.ts'
import { testConfig } from '../test/helpers/sample-db.ts'
import { openService } from '../test/helpers/service.ts'
import { fmtMs, line, runMeasured } from './measure.ts'

const count = Number(process.env.BENCH_SET_DATABASES ?? 20)
const rows = Number(process.env.BENCH_SET_ROWS ?? 20_000)
const root = join(import.meta.dirname, '..')
const databases = Array.from({ length: count }, (_, i) => `bench_set_${String(i).padStart(2, '0')}`)

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-sets-'))
try {
  console.log(`filling ${count} databases of ${rows} rows each...`)
  for (const db of databases) {
    await cluster.createDatabase(db)
    await cluster.psql(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g; ANALYZE t`, db)
  }

  // the engine alone: one set against N creates, each awaited (the queue runs one at a time either way)
  const engine = async (dir: string, fn: (s: Awaited<ReturnType<typeof openService>>) => Promise<void>): Promise<number> => {
    const config = testConfig(cluster, databases[0], { PGKEEP_BACKUP_DIR: join(work, dir) })
    // one target per database for the separate creates: each an ordinary single-database backup
    for (const database of databases) config.targets[database] = { ...config.targets.default, name: database, database }
    const service = await openService(config)
    try {
      const started = performance.now()
      await fn(service)
      return performance.now() - started
    } finally {
      await service.close()
    }
  }
  const check = (status: string): void => { if (status !== 'completed') throw new Error(`a backup ended ${status}`) }
  // warm the page cache so the first contender is not penalised
  await engine('warm', async s => { check((await s.waitForSet((await s.create({ databases }, 'bench')).set!.id)).status) })
  const separate = await engine('separate', async s => { for (const database of databases) check((await s.waitFor((await s.create({ target: database }, 'bench')).id)).status) })
  const asSet = await engine('set', async s => { check((await s.waitForSet((await s.create({ databases }, 'bench')).set!.id)).status) })
  const asSetNoGlobals = await engine('set-no-globals', async s => { check((await s.waitForSet((await s.create({ databases, globals: false }, 'bench')).set!.id)).status) })

  // the CLI: N processes (pgkeep create each) against one pgkeep create --all-databases
  const cliEnv = (dir: string, db = databases[0]): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, DATABASE_URL: cluster.url(db), PGKEEP_BACKUP_DIR: join(work, dir), PGKEEP_PG_BIN_DIR: cluster.binDir })
  const pgkeep = join(root, 'bin/pgkeep.js')
  let cliSeparate = 0
  for (const db of databases) {
    const r = await runMeasured(process.execPath, [pgkeep, 'create', '--json'], { env: cliEnv('cli-separate', db) })
    if (r.code !== 0) throw new Error(`pgkeep create exited ${r.code}`)
    cliSeparate += r.ms
  }
  const cliSet = await runMeasured(process.execPath, [pgkeep, 'create', '--json', ...databases.flatMap(d => ['--database', d])], { env: cliEnv('cli-set') })
  if (cliSet.code !== 0) throw new Error(`pgkeep create --database ... exited ${cliSet.code}`)

  console.log(`\nbackup set benchmark: ${count} databases of ${rows} rows, ${new Date().toISOString()}`)
  line(`engine: ${count} separate creates, one after another`, fmtMs(separate))
  line(`engine: one set of ${count} databases + globals`, fmtMs(asSet))
  line(`engine: one set of ${count} databases, no globals`, fmtMs(asSetNoGlobals))
  const ratio = asSet / separate
  line('    ratio set (with globals) / separate creates', ratio.toFixed(3), '<= 1.00', ratio <= 1.0)
  line(`cli: ${count} pgkeep create processes`, fmtMs(cliSeparate))
  line(`cli: one pgkeep create --database x${count}`, fmtMs(cliSet.ms))
  const cliRatio = cliSet.ms / cliSeparate
  line('    ratio set / separate (cli)', cliRatio.toFixed(3), '<= 1.00', cliRatio <= 1.0)
} finally {
  await cluster.stop()
  rmSync(work, { recursive: true, force: true })
}
