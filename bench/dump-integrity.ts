// Issue 12 target 1: what the integrity work every pgkeep backup does (a sha256 of the stored bytes, an fsync)
// costs, and where the hash is cheapest. Each contender runs the same pg_dump -Fc -Z0 | zstd -3 -T0 of the same
// database into a file; they differ only in how the stored bytes get hashed and whether the file is fsynced.
// CPU is the whole process tree's (this node's own use plus every child's), steadier than wall time on a shared
// machine. Size by BENCH_SIZE_MB (default 128, SQL form), runs by BENCH_RUNS (default 3, the best counts).
//   shell contenders: the stock tools, as an admin would chain them
//   node contenders: zstd writes the file (as pgkeep does), node hashes it as it lands (landing-file.ts
//   hashLandingFile) on the main thread, with or without flushing it behind, in a worker_thread, or after zstd
//   ended (node, sha256sum, openssl); CPU is the same work wherever it runs, the final fsync is what moves
import { spawn } from 'node:child_process'
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { hashLandingFile } from '../server/engine/dump/landing-file.ts'
import { fillDatabase, startCluster } from './http-setup.ts'
import { line, timedCall } from './measure.ts'

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 128)
const runs = Number(process.env.BENCH_RUNS ?? 3)

/** The same tail-read as hashLandingFile, in a worker: it polls `done` (a shared flag) instead of a promise. */
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads')
const { openSync, readSync, closeSync } = require('node:fs')
const { createHash } = require('node:crypto')
const done = new Int32Array(workerData.flag)
const fd = openSync(workerData.path, 'r')
const hash = createHash('sha256')
const buf = Buffer.allocUnsafe(4 * 1024 * 1024)
let pos = 0
for (;;) {
  const wasDone = Atomics.load(done, 0) === 1
  const n = readSync(fd, buf, 0, buf.length, pos)
  if (n > 0) { hash.update(buf.subarray(0, n)); pos += n; continue }
  if (wasDone) break
  Atomics.wait(done, 0, 0, 100)
}
closeSync(fd)
parentPort.postMessage({ sizeBytes: pos, sha256: hash.digest('hex') })
`

function hashInWorker (path: string, writerDone: Promise<unknown>): Promise<{ sizeBytes: number, sha256: string }> {
  const flag = new SharedArrayBuffer(4)
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, flag } })
  void writerDone.finally(() => { const f = new Int32Array(flag); Atomics.store(f, 0, 1); Atomics.notify(f, 0) })
  return new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
}

async function hashAfter (path: string): Promise<unknown> {
  return await hashLandingFile(path, Promise.resolve(), NO_WRITE_BEHIND)
}

/** how long the last fsync took: the part of the disk's work left for the end */
let lastFsyncMs: number | undefined
async function fsync (path: string): Promise<void> {
  const t0 = performance.now()
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
  lastFsyncMs = performance.now() - t0
}
const NO_WRITE_BEHIND = { flushEveryBytes: Infinity }

const exited = (child: ReturnType<typeof spawn>): Promise<number | null> => new Promise(resolve => child.on('close', resolve))

const cluster = await startCluster()
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-integrity-'))
try {
  await fillDatabase(cluster, 'bench', sizeMb)
  const pgDumpPath = join(cluster.binDir, 'pg_dump')
  const dumpArgs = ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-Fc', '-Z0', 'bench']
  const dumpCmd = `${pgDumpPath} ${dumpArgs.join(' ')}`
  const out = join(work, 'out.zst')

  /** pg_dump | zstd, zstd writing `out` itself; resolves when both exited */
  const zstdToFile = (): Promise<unknown> => {
    const pg = spawn(pgDumpPath, dumpArgs, { stdio: ['ignore', 'pipe', 'inherit'] })
    const fd = openSync(out, 'w')
    const z = spawn('zstd', ['-T0', '-3', '-q', '-c', '-'], { stdio: [pg.stdout!, fd, 'inherit'] })
    pg.stdout!.destroy()
    closeSync(fd)
    return Promise.all([exited(pg), exited(z)]).then(([a, b]) => { if (a !== 0 || b !== 0) throw new Error(`pg_dump ${a}, zstd ${b}`) })
  }
  const sh = (script: string) => async (): Promise<void> => {
    const code = await exited(spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] }))
    if (code !== 0) throw new Error(`${script}: exit ${code}`)
  }

  const contenders: Record<string, () => Promise<unknown>> = {
    'shell: pg_dump | zstd > f (no integrity)': sh(`${dumpCmd} | zstd -3 -T0 -q > ${out}`),
    'shell: ... | zstd | tee f | sha256sum; sync f': sh(`${dumpCmd} | zstd -3 -T0 -q | tee ${out} | sha256sum > /dev/null && sync ${out}`),
    'shell: ... | zstd -o f; sha256sum f; sync f': sh(`${dumpCmd} | zstd -3 -T0 -q -f -o ${out} && sha256sum ${out} > /dev/null && sync ${out}`),
    'shell: ... | zstd | tee f | openssl sha256; sync f': sh(`${dumpCmd} | zstd -3 -T0 -q | tee ${out} | openssl dgst -sha256 > /dev/null && sync ${out}`),
    'shell: ... | zstd -o f; openssl sha256 f; sync f': sh(`${dumpCmd} | zstd -3 -T0 -q -f -o ${out} && openssl dgst -sha256 ${out} > /dev/null && sync ${out}`),
    'node: zstd > f, fsync (no hash)': async () => { await zstdToFile(); await fsync(out) },
    'node: hash as it lands, main thread (no fsync)': async () => { await hashLandingFile(out, zstdToFile(), NO_WRITE_BEHIND) },
    'node: hash as it lands, main thread + fsync (before)': async () => { await hashLandingFile(out, zstdToFile(), NO_WRITE_BEHIND); await fsync(out) },
    'node: hash as it lands, main thread, flushed behind + fsync (now)': async () => { await hashLandingFile(out, zstdToFile()); await fsync(out) },
    'node: hash as it lands, worker_thread + fsync': async () => { await hashInWorker(out, zstdToFile()); await fsync(out) },
    'node: hash after zstd ended + fsync': async () => { await zstdToFile(); await hashAfter(out); await fsync(out) },
    'node: sha256sum f after zstd ended + fsync': async () => { await zstdToFile(); await sh(`sha256sum ${out} > /dev/null`)(); await fsync(out) },
    'node: openssl sha256 f after zstd ended + fsync': async () => { await zstdToFile(); await sh(`openssl dgst -sha256 ${out} > /dev/null`)(); await fsync(out) },
  }
  // warm the page cache so the first contender is not penalised
  await sh(`${dumpCmd} > /dev/null`)()
  console.log(`\nthe integrity work (sha256 of the stored bytes, fsync), ${sizeMb} MB table, best of ${runs}, ${new Date().toISOString()}`)
  for (const [name, run] of Object.entries(contenders)) {
    let bestMs = Infinity
    let bestCpu = Infinity
    let fsyncMs: number | undefined
    for (let i = 0; i < runs; i++) {
      rmSync(out, { force: true })
      lastFsyncMs = undefined
      const t = await timedCall(run)
      bestMs = Math.min(bestMs, t.ms)
      bestCpu = Math.min(bestCpu, t.cpuMs)
      if (lastFsyncMs !== undefined) fsyncMs = Math.min(fsyncMs ?? Infinity, lastFsyncMs)
    }
    const tail = fsyncMs === undefined ? '' : `, final fsync ${(fsyncMs / 1000).toFixed(2)} s`
    line(`    ${name}`, `${(bestMs / 1000).toFixed(2)} s wall, cpu ${(bestCpu / 1000).toFixed(2)} s${tail}`)
  }

  // each hasher alone on one stored file (page cache warm), so the per-GB cost is not lost in the dump's noise
  await zstdToFile()
  const storedGb = statSync(out).size / 1024 ** 3
  const copy = join(work, 'copy.zst')
  const alone: Record<string, () => Promise<unknown>> = {
    'node createHash, main thread (read back + hash)': async () => await hashAfter(out),
    'node createHash, worker_thread': async () => await hashInWorker(out, Promise.resolve()),
    'openssl dgst -sha256 f': sh(`openssl dgst -sha256 ${out} > /dev/null`),
    'sha256sum f': sh(`sha256sum ${out} > /dev/null`),
    'tee (what ... | tee f | hasher adds)': sh(`tee ${copy} < ${out} > /dev/null`),
  }
  console.log(`\neach alone on the stored file (${(storedGb * 1024).toFixed(0)} MB), min of ${Math.max(runs, 5)}, per GB stored:`)
  for (const [name, run] of Object.entries(alone)) {
    let bestCpu = Infinity
    let bestMs = Infinity
    for (let i = 0; i < Math.max(runs, 5); i++) {
      const t = await timedCall(run)
      bestMs = Math.min(bestMs, t.ms)
      bestCpu = Math.min(bestCpu, t.cpuMs)
    }
    line(`    ${name}`, `cpu ${(bestCpu / 1000 / storedGb).toFixed(2)} s/GB, ${(storedGb * 1024 / (bestMs / 1000)).toFixed(0)} MB/s`)
  }
  let syncMs = Infinity
  for (let i = 0; i < 3; i++) {
    copyFileSync(out, copy)
    await fsync(copy)
    syncMs = Math.min(syncMs, lastFsyncMs!)
  }
  line('    fsync of the whole file, all of it dirty', `${(syncMs / 1000 / storedGb).toFixed(2)} s/GB wall`)
} finally {
  rmSync(work, { recursive: true, force: true })
  await cluster.stop()
}
