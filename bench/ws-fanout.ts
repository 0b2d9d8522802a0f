// Issue 12 benchmark: one dump watched by WebSocket viewers vs by none.
// - 200 viewers: event latency p50/p99 from the engine emitting progress (as bytes leave pg_dump) to a viewer
//   receiving it (target p99 <= 250 ms), and the server's event-loop delay during the dump (what stalls it).
// - 1,000 viewers: dump time watched / alone (target <= 1.05), and the server's CPU per dump.
// - `pgkeep serve` in its own process, no flags, 200 viewers: its peak RSS during the dump (target <= 150 MB).
// Viewers run in a child process so their CPU is not the server's. Size by BENCH_SIZE_MB (default 1024),
// viewers by BENCH_VIEWERS (200) and BENCH_VIEWERS_MANY (1000); BENCH_PHASES=latency,slowdown,rss picks parts.
// On a machine busy with other work, the wall-clock figures mostly measure that work; the server's CPU per dump
// (alone / watched) is the steadier figure of what the viewers cost.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { Progress } from '../schemas/backup.ts'
import { BENCH_JWT_SECRET, fillDatabase, percentile, sizeMb, startBenchServer, startCluster, type BenchServer } from './http-setup.ts'
import { childrenCpuMs, fmtMb, fmtMs, line } from './measure.ts'
import type { TestCluster } from '../test/helpers/pg-cluster.ts'

const viewersWanted = Number(process.env.BENCH_VIEWERS ?? 200)
const manyViewers = Number(process.env.BENCH_VIEWERS_MANY ?? 1000)
const phases = new Set((process.env.BENCH_PHASES ?? 'latency,slowdown,rss').split(','))
const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * The viewers' process, in plain JavaScript so no TypeScript loader runs beside the server: connects N
 * viewers, prints "ready", then, once every viewer saw the job end, one JSON line: per viewer [bytes, receivedAt]
 * of each progress event, and how many saw the final status.
 */
const VIEWERS_JS = `
import WebSocket from 'ws'
const [url, n] = [process.argv[1], Number(process.argv[2])]
const headers = { authorization: 'Bearer ' + process.env.PGKEEP_TOKEN }
const sockets = []; const received = []; let done = 0; let reported = false
const report = () => {
  if (reported) return
  reported = true
  process.stdout.write(JSON.stringify({ received, done, closed: sockets.filter(s => s.readyState !== WebSocket.OPEN).length }) + '\\n')
  // stays until told (stdin ends): an exit inside the dump's measurement would count this process's CPU as the dump's
  process.stdin.once('end', () => { for (const s of sockets) s.terminate() }).resume()
}
const connect = async (i) => {
  const ws = new WebSocket(url, { headers }); sockets.push(ws); received[i] = []
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString())
    if (m.type === 'progress') received[i].push([m.bytes, Date.now()])
    if (m.type === 'status' && ['completed', 'failed', 'cancelled'].includes(m.status)) { ws.ended = true; if (++done === n) report() }
  })
  // a viewer the server dropped will never see the end: report once every viewer either saw it or was dropped
  ws.on('close', () => { if (!reported && sockets.every(s => s.ended || s.readyState === WebSocket.CLOSED) && sockets.length === n) report() })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
}
// a few at a time: a thousand handshakes at once would only measure the accept queue
for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => connect(i + k)))
process.stdout.write('ready\\n')
`

interface Viewers {
  /** resolves once every viewer saw the job end (or the process died) */
  report: Promise<{ received: [number, number][][], done: number, closed: number }>
  /** lets the viewers' process go, once what it costs is no longer measured */
  end: () => Promise<void>
}

async function startViewers (wsUrl: string, n: number, token: string): Promise<Viewers> {
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', VIEWERS_JS, wsUrl, String(n)],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, PGKEEP_TOKEN: token }, cwd: root })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => { if (out.includes('ready\n')) resolve() })
    child.once('exit', code => reject(new Error(`viewers exited ${code}`)))
  })
  // the report is one line: complete once its newline came
  const reportLine = (): string | undefined => out.split('\n').slice(0, -1).find(l => l.startsWith('{'))
  const reported = new Promise<void>(resolve => child.stdout!.on('data', () => { if (reportLine() !== undefined) resolve() }))
  return {
    report: Promise.race([reported, exited]).then(() => JSON.parse(reportLine() ?? '{"received":[],"done":0,"closed":0}')),
    end: async () => { child.stdin!.end(); await exited },
  }
}

interface DumpRun { ms: number, cpuMs: number, treeCpuMs: number, loopP99: number, loopMax: number }

async function timedDump (server: BenchServer, onProgress?: (p: Progress) => void): Promise<DumpRun> {
  const service = server.app.backupService
  const loop = monitorEventLoopDelay({ resolution: 10 })
  const listener = (p: Progress): void => onProgress?.(p)
  service.on('progress', listener)
  const cpu = process.cpuUsage()
  const childCpu = childrenCpuMs()
  loop.enable()
  const b = await service.create({}, 'bench')
  const done = await service.waitFor(b.id)
  loop.disable()
  const used = process.cpuUsage(cpu)
  service.off('progress', listener)
  if (done.status !== 'completed') throw new Error(`dump ${done.status}: ${done.error?.message}`)
  await service.delete(done.id)
  return {
    ms: Date.parse(done.finishedAt!) - Date.parse(done.startedAt!),
    cpuMs: (used.user + used.system) / 1000,
    // the server and the dump's children: what the viewers slow down is this tree's work on shared cores
    treeCpuMs: (used.user + used.system) / 1000 + childrenCpuMs() - childCpu,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
  }
}

/** 200 viewers and one dump: latency of the progress events they received, and the loop's stalls. */
async function latencyRun (server: BenchServer): Promise<void> {
  const viewers = await startViewers(`ws://${server.baseUrl}/api/backup/ws`, viewersWanted, server.token)
  const emitted = new Map<number, number>()
  const watched = await timedDump(server, p => { if (!emitted.has(p.bytes)) emitted.set(p.bytes, Date.now()) })
  const result = await viewers.report
  await viewers.end()
  const latencies: number[] = []
  for (const viewer of result.received) {
    for (const [bytes, at] of viewer) {
      const sent = emitted.get(bytes)
      if (sent !== undefined) latencies.push(at - sent)
    }
  }
  latencies.sort((a, b) => a - b)
  const p99 = percentile(latencies, 99)
  console.log(`${viewersWanted} viewers: ${result.done} saw the final status, ${result.closed} were dropped`)
  line('progress events delivered (all viewers)', String(latencies.length))
  line('event latency p50', `${percentile(latencies, 50)} ms`)
  line('event latency p99', `${p99} ms`, '<= 250 ms', p99 <= 250)
  line('server event-loop delay during the dump p99 / max', `${watched.loopP99.toFixed(0)} ms / ${watched.loopMax.toFixed(0)} ms`)
}

/** Dump time alone, watched by `n` viewers, alone again: the slowdown the viewers cost. */
async function slowdownRun (server: BenchServer, n: number): Promise<void> {
  const alone1 = await timedDump(server)
  const viewers = await startViewers(`ws://${server.baseUrl}/api/backup/ws`, n, server.token)
  const watched = await timedDump(server)
  const seen = await viewers.report
  await viewers.end()
  const alone2 = await timedDump(server)
  const baseline = (alone1.ms + alone2.ms) / 2
  const ratio = watched.ms / baseline
  console.log(`${n} viewers: ${seen.done} saw the final status, ${seen.closed} were dropped`)
  line('dump with no viewers (mean of before/after)', `${fmtMs(baseline)} (${fmtMs(alone1.ms)}, ${fmtMs(alone2.ms)})`)
  line(`dump with ${n} viewers`, fmtMs(watched.ms))
  line('ratio watched / alone', ratio.toFixed(3), '<= 1.05', ratio <= 1.05)
  line('server CPU per dump, alone / watched', `${fmtMs((alone1.cpuMs + alone2.cpuMs) / 2)} / ${fmtMs(watched.cpuMs)}`)
  const treeAlone = (alone1.treeCpuMs + alone2.treeCpuMs) / 2
  const treeRatio = watched.treeCpuMs / treeAlone
  line('CPU of server + dump children, alone / watched', `${fmtMs(treeAlone)} / ${fmtMs(watched.treeCpuMs)}`)
  line('ratio watched / alone (CPU, steadier on a shared machine)', treeRatio.toFixed(3), '<= 1.05', treeRatio <= 1.05)
}

function peakRssBytes (pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

/** `pgkeep serve` as an admin starts it (bin/pgkeep.js, no flags of theirs), 200 viewers, one dump: its peak RSS. */
async function serveRssRun (cluster: TestCluster): Promise<void> {
  const backupDir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-serve-'))
  // the token is made by an app on the same backups dir and secret, closed again before serve starts
  const maker = await startBenchServer({ cluster, db: 'bench', backupDir })
  const token = maker.token
  await maker.close()
  // the bin itself, so its shebang's node options apply as they do for an admin typing `pgkeep serve`
  const serve = spawn(join(root, 'bin/pgkeep.js'), ['serve', '--port', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: cluster.url('bench'),
      PGKEEP_BACKUP_DIR: backupDir,
      PGKEEP_JWT_SECRET: BENCH_JWT_SECRET,
      PGKEEP_PG_BIN_DIR: cluster.binDir,
      PGKEEP_LOG_LEVEL: 'warn',
      // to compare V8 settings (BENCH_SERVE_NODE_OPTIONS=--max-semi-space-size=4); the figure that counts has none
      ...(process.env.BENCH_SERVE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVE_NODE_OPTIONS } : {}),
    },
  })
  try {
    let err = ''
    const base = await new Promise<string>((resolve, reject) => {
      serve.stderr!.on('data', (d: Buffer) => {
        err += d
        const m = /listening on http:\/\/(\S+)/.exec(err)
        if (m) resolve(m[1])
      })
      serve.once('exit', code => reject(new Error(`pgkeep serve exited ${code}: ${err}`)))
    })
    const idle = peakRssBytes(serve.pid!)
    const viewers = await startViewers(`ws://${base}/api/backup/ws`, viewersWanted, token)
    const res = await fetch(`http://${base}/api/backup/create`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    })
    if (res.status !== 202) throw new Error(`create answered ${res.status}: ${await res.text()}`)
    const seen = await viewers.report
    await viewers.end()
    const peak = peakRssBytes(serve.pid!)
    console.log(`pgkeep serve (bin/pgkeep.js, ${process.env.BENCH_SERVE_NODE_OPTIONS ?? 'no flags'}), ${viewersWanted} viewers: ${seen.done} saw the final status`)
    line('serve peak RSS before the dump / during it', `${fmtMb(idle)} / ${fmtMb(peak)}`, '<= 150 MB', peak <= 150 * 1024 * 1024)
  } finally {
    serve.kill('SIGTERM')
    await new Promise(resolve => serve.once('exit', resolve))
    rmSync(backupDir, { recursive: true, force: true })
  }
}

async function main (): Promise<void> {
  const cluster = await startCluster()
  let server: BenchServer | undefined
  try {
    console.log(`filling a ~${sizeMb} MB database...`)
    await fillDatabase(cluster, 'bench', sizeMb)
    server = await startBenchServer({ cluster, db: 'bench' })
    await timedDump(server) // warm the page cache
    if (phases.has('latency')) await latencyRun(server)
    if (phases.has('slowdown')) await slowdownRun(server, manyViewers)
    await server.close()
    server = undefined
    if (phases.has('rss')) await serveRssRun(cluster)
  } finally {
    await server?.close()
    await cluster.stop()
  }
}

await main()
