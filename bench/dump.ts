// Issue 2 benchmark: pgkeep create vs the hand-written shell pipeline and pg_dump defaults, peak RSS
// at two dump sizes, and validate throughput. Size by BENCH_SIZE_MB (default 1024, in SQL form).
import { statSync, rmSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCluster, type TestCluster } from '../test/helpers/pg-cluster.ts'
import { fmtMb, fmtMs, line, runMeasured } from './measure.ts'

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024)
const root = join(import.meta.dirname, '..')

/** Rows of md5 text: close to incompressible for zstd -3 beyond hex's 2x, like real hashes/uuids/ciphertext. */
async function fillDatabase (cluster: TestCluster, db: string, mb: number): Promise<void> {
  await cluster.createDatabase(db)
  await cluster.psql('CREATE TABLE payload (id bigint PRIMARY KEY, a text, b text, c text); CREATE TABLE small (id int, v text)', db)
  const rowBytes = 3 * 64 + 12
  const rows = Math.ceil(mb * 1024 * 1024 / rowBytes)
  const batch = 500_000
  for (let from = 1; from <= rows; from += batch) {
    const to = Math.min(rows, from + batch - 1)
    await cluster.psql(`INSERT INTO payload SELECT g, md5(random()::text) || md5(random()::text), md5(random()::text) || md5(g::text), md5(random()::text) || md5(random()::text) FROM generate_series(${from}, ${to}) g`, db)
  }
  await cluster.psql("INSERT INTO small SELECT g, 'x' || g FROM generate_series(1, 1000) g", db)
  await cluster.psql('VACUUM ANALYZE', db)
}

async function pgkeepCreate (cluster: TestCluster, db: string, backupDir: string): Promise<{ ms: number, peakRssMb: number, record: { name: string, sizeBytes: number, id: string } }> {
  const r = await runMeasured(process.execPath, [join(root, 'bin/pgkeep.js'), 'create', '--json'], {
    env: { PATH: process.env.PATH, DATABASE_URL: cluster.url(db), PGKEEP_BACKUP_DIR: backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir },
  })
  if (r.code !== 0) throw new Error(`pgkeep create exited ${r.code}`)
  return { ms: r.ms, peakRssMb: r.peakRssMb, record: JSON.parse(r.stdout) }
}

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-'))
try {
  const pgDump = join(cluster.binDir, 'pg_dump')
  const conn = `-h ${cluster.socketDir} -p ${cluster.port} -U postgres`
  console.log(`filling a ~${sizeMb} MB database (and a ${Math.round(sizeMb / 4)} MB one for the memory check)...`)
  await fillDatabase(cluster, 'bench', sizeMb)
  await fillDatabase(cluster, 'bench_small', Math.round(sizeMb / 4))

  // warm the page cache so the first contender is not penalised
  await runMeasured('sh', ['-c', `${pgDump} ${conn} -Fc -Z0 bench > /dev/null`])

  const shell = await runMeasured('sh', ['-c', `${pgDump} ${conn} -Fc -Z0 bench | zstd -3 -T0 -q > ${work}/shell.dump.zst`])
  const defaults = await runMeasured('sh', ['-c', `${pgDump} ${conn} -Fc bench > ${work}/default.dump`])
  const mine = await pgkeepCreate(cluster, 'bench', join(work, 'backups'))
  const small = await pgkeepCreate(cluster, 'bench_small', join(work, 'backups-small'))

  const mineSize = mine.record.sizeBytes
  const shellSize = statSync(`${work}/shell.dump.zst`).size
  const defaultSize = statSync(`${work}/default.dump`).size
  console.log(`\npgkeep benchmark, ${sizeMb} MB database (SQL form), ${new Date().toISOString()}`)
  line('(a) pgkeep create (custom + zstd -3, -T0)', `${fmtMs(mine.ms)}, ${fmtMb(mineSize)}`)
  line('    shell: pg_dump -Fc -Z0 | zstd -3 -T0', `${fmtMs(shell.ms)}, ${fmtMb(shellSize)}`)
  const ratioA = mine.ms / shell.ms
  line('    ratio pgkeep / shell pipeline', ratioA.toFixed(3), '<= 1.10', ratioA <= 1.10)
  line('(b) pg_dump -Fc defaults', `${fmtMs(defaults.ms)}, ${fmtMb(defaultSize)}`)
  const speedup = defaults.ms / mine.ms
  line('    speed-up pgkeep vs pg_dump -Fc', `${speedup.toFixed(2)}x`, '>= 2.5x', speedup >= 2.5)
  line('    size pgkeep / pg_dump -Fc', (mineSize / defaultSize).toFixed(3), '<= 1.00', mineSize <= defaultSize)
  line(`(c) peak RSS of pgkeep, ${sizeMb} MB dump`, `${mine.peakRssMb.toFixed(1)} MB`, '< 150 MB', mine.peakRssMb < 150)
  line(`    peak RSS of pgkeep, ${Math.round(sizeMb / 4)} MB dump`, `${small.peakRssMb.toFixed(1)} MB`, 'flat with size', Math.abs(mine.peakRssMb - small.peakRssMb) < 25)

  const validate = await runMeasured(process.execPath, [join(root, 'bin/pgkeep.js'), 'validate', mine.record.id, '--json'], {
    env: { PATH: process.env.PATH, DATABASE_URL: cluster.url('bench'), PGKEEP_BACKUP_DIR: join(work, 'backups'), PGKEEP_PG_BIN_DIR: cluster.binDir },
  })
  if (validate.code !== 0) throw new Error(`validate exited ${validate.code}`)
  line('(d) validate (sha256 + pg_restore full read)', `${fmtMs(validate.ms)}, ${(mineSize / 1024 / 1024 / (validate.ms / 1000)).toFixed(0)} MB/s stored, peak RSS ${validate.peakRssMb.toFixed(1)} MB`)
} finally {
  rmSync(work, { recursive: true, force: true })
  await cluster.stop()
}
