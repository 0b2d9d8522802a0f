// Issue 3 benchmark: one dump watched by 200 WebSocket viewers vs by none. Dump time ratio (target
// <= 1.05), server RSS, and event latency p50/p99 from the engine emitting progress (as bytes leave
// pg_dump) to a viewer receiving it (target p99 < 500 ms). Viewers run in a child process so their
// CPU is not the server's. Size by BENCH_SIZE_MB (default 1024), viewers by BENCH_VIEWERS (200).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Progress } from '../schemas/backup.ts'
import { fillDatabase, percentile, sizeMb, startBenchServer, startCluster, type BenchServer } from './http-setup.ts'
import { fmtMb, fmtMs, line } from './measure.ts'

const viewersWanted = Number(process.env.BENCH_VIEWERS ?? 200)

/**
 * The viewers' process, in plain JavaScript so no TypeScript loader runs beside the server: connects N
 * viewers, prints "ready", then one JSON line of [bytes, receivedAt] per progress event and viewer.
 */
const VIEWERS_JS = `
import WebSocket from 'ws'
const [url, n] = [process.argv[1], Number(process.argv[2])]
const headers = { authorization: 'Bearer ' + process.env.PGKEEP_TOKEN }
const sockets = []; const received = []; let done = 0
await Promise.all(Array.from({ length: n }, async (_, i) => {
  const ws = new WebSocket(url, { headers }); sockets.push(ws); received[i] = []
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString())
    if (m.type === 'progress') received[i].push([m.bytes, Date.now()])
    if (m.type === 'status' && ['completed', 'failed', 'cancelled'].includes(m.status) && ++done === n) {
      process.stdout.write(JSON.stringify({ received, closed: sockets.filter(s => s.readyState !== WebSocket.OPEN).length }) + '\\n')
      for (const s of sockets) s.terminate()
    }
  })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
}))
process.stdout.write('ready\\n')
`

async function timedDump (server: BenchServer, onProgress?: (p: Progress) => void): Promise<{ ms: number, peakRss: number }> {
  const service = server.app.backupService
  let peakRss = process.memoryUsage().rss
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 50)
  const listener = (p: Progress): void => onProgress?.(p)
  service.on('progress', listener)
  const b = await service.create({}, 'bench')
  const done = await service.waitFor(b.id)
  service.off('progress', listener)
  clearInterval(sampler)
  if (done.status !== 'completed') throw new Error(`dump ${done.status}: ${done.error?.message}`)
  await service.delete(done.id)
  return { ms: Date.parse(done.finishedAt!) - Date.parse(done.startedAt!), peakRss }
}

async function main (): Promise<void> {
  const cluster = await startCluster()
  let server: BenchServer | undefined
  try {
    console.log(`filling a ~${sizeMb} MB database...`)
    await fillDatabase(cluster, 'bench', sizeMb)
    server = await startBenchServer({ cluster, db: 'bench' })
    await timedDump(server) // warm the page cache

    const alone1 = await timedDump(server)
    const child = spawn(process.execPath, ['--input-type=module', '-e', VIEWERS_JS, `ws://${server.baseUrl}/api/backup/ws`, String(viewersWanted)],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PGKEEP_TOKEN: server.token }, cwd: fileURLToPath(new URL('..', import.meta.url)) })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d })
    await new Promise<void>((resolve, reject) => {
      const check = (): void => { if (out.includes('ready\n')) resolve() }
      child.stdout.on('data', check)
      child.once('exit', code => reject(new Error(`viewers exited ${code}`)))
    })
    // listen for the exit before the dump: the viewers may report and exit before timedDump returns
    const viewersExited = new Promise<void>(resolve => child.once('exit', () => resolve()))
    const emitted = new Map<number, number>()
    const watched = await timedDump(server, p => { if (!emitted.has(p.bytes)) emitted.set(p.bytes, Date.now()) })
    await viewersExited
    const result = JSON.parse(out.split('\n').find(l => l.startsWith('{')) ?? '{"received":[]}') as { received: [number, number][][], closed: number }
    const alone2 = await timedDump(server)

    const latencies: number[] = []
    for (const viewer of result.received) {
      for (const [bytes, at] of viewer) {
        const sent = emitted.get(bytes)
        if (sent !== undefined) latencies.push(at - sent)
      }
    }
    latencies.sort((a, b) => a - b)
    const baseline = (alone1.ms + alone2.ms) / 2
    const ratio = watched.ms / baseline
    const p99 = percentile(latencies, 99)
    console.log(`database ~${sizeMb} MB, ${viewersWanted} viewers (${result.received.length} reported, ${result.closed} dropped)`)
    line('dump with no viewers (mean of before/after)', `${fmtMs(baseline)} (${fmtMs(alone1.ms)}, ${fmtMs(alone2.ms)})`)
    line(`dump with ${viewersWanted} viewers`, fmtMs(watched.ms))
    line('ratio watched / alone', ratio.toFixed(3), '<= 1.05', ratio <= 1.05)
    line('server peak RSS, no viewers / with viewers', `${fmtMb(alone1.peakRss)} / ${fmtMb(watched.peakRss)}`)
    line('progress events delivered (all viewers)', String(latencies.length))
    line('event latency p50', `${percentile(latencies, 50)} ms`)
    line('event latency p99', `${p99} ms`, '< 500 ms', p99 < 500)
  } finally {
    await server?.close()
    await cluster.stop()
  }
}

await main()
