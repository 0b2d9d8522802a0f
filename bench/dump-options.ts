// Issue 12 target 1: how pg_dump's bytes should reach zstd and the file. Each option runs the same pg_dump of the
// same database; node's own CPU is what differs (the children do the same work), so it is printed beside wall time.
//   relay   pg_dump -> node -> zstd -> node (sha256) -> file      (pgkeep before issue 12)
//   kernel  pg_dump -> zstd (kernel pipe) -> node (sha256) -> file (pgkeep now: stores, copies and S3 need the stream)
//   zfile   pg_dump -> zstd -> file (zstd writes it), node hashes the file afterwards
// Size by BENCH_SIZE_MB (default 256).
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { runDumpPipeline } from '../server/engine/dump/pipeline.ts'
import { fillDatabase, startCluster } from './http-setup.ts'
import { childrenCpuMs, line } from './measure.ts'

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 256)
const runs = Number(process.env.BENCH_RUNS ?? 3)

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-options-'))
try {
  await fillDatabase(cluster, 'bench', sizeMb)
  const dumpArgs = ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-Fc', '-Z0', 'bench']
  const pgDump = (): ReturnType<typeof spawn> => spawn(join(cluster.binDir, 'pg_dump'), dumpArgs, { stdio: ['ignore', 'pipe', 'inherit'] })
  const out = join(work, 'out.zst')

  const options: Record<string, () => Promise<string>> = {
    relay: async () => {
      const r = await runDumpPipeline({ source: pgDump().stdout!, compression: 'zstd', level: 3, outputs: [createWriteStream(out)] })
      return r.sha256
    },
    kernel: async () => {
      const pg = pgDump()
      const z = spawn('zstd', ['-T0', '-3', '-q', '-c', '-'], { stdio: [pg.stdout!, 'pipe', 'inherit'] })
      pg.stdout!.destroy()
      const hash = createHash('sha256')
      z.stdout!.on('data', (c: Buffer) => hash.update(c))
      await pipeline(z.stdout!, createWriteStream(out))
      return hash.digest('hex')
    },
    zfile: async () => {
      const pg = pgDump()
      const fd = openSync(out, 'w')
      const z = spawn('zstd', ['-T0', '-3', '-q', '-c', '-'], { stdio: [pg.stdout!, fd, 'inherit'] })
      pg.stdout!.destroy()
      closeSync(fd)
      await new Promise(resolve => z.on('close', resolve))
      const hash = createHash('sha256')
      await pipeline(createReadStream(out, { highWaterMark: 1024 * 1024 }), hash)
      return hash.digest('hex')
    },
  }
  console.log(`\nhow pg_dump's bytes reach zstd and the file, ${sizeMb} MB table, best of ${runs}, ${new Date().toISOString()}`)
  for (const [name, run] of Object.entries(options)) {
    let bestMs = Infinity
    let nodeCpu = Infinity
    let kidsCpu = Infinity
    for (let i = 0; i < runs; i++) {
      const c0 = process.cpuUsage()
      const k0 = childrenCpuMs()
      const t0 = performance.now()
      await run()
      bestMs = Math.min(bestMs, performance.now() - t0)
      const c = process.cpuUsage(c0)
      nodeCpu = Math.min(nodeCpu, (c.user + c.system) / 1000)
      kidsCpu = Math.min(kidsCpu, childrenCpuMs() - k0)
    }
    line(`    ${name}`, `${(bestMs / 1000).toFixed(2)} s wall, node cpu ${(nodeCpu / 1000).toFixed(2)} s, children cpu ${(kidsCpu / 1000).toFixed(2)} s`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
  await cluster.stop()
}
