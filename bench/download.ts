// Issue 3 benchmark: download throughput of a large backup over loopback HTTP vs reading the file with
// `cat` (target >= 0.8). The first download may re-hash the file before its first byte (integrity
// check); a second one right after relies on that fresh verification, so both are shown.
// Size by BENCH_SIZE_MB (default 1024); stored without compression so the file is about that size.
import { join } from 'node:path'
import { fillDatabase, sizeMb, startBenchServer, startCluster, type BenchServer } from './http-setup.ts'
import { fmtMb, fmtMs, line, runMeasured } from './measure.ts'

/** curl in its own process, so the client's CPU is not the server's (as for a real downloader). */
async function download (server: BenchServer, id: string): Promise<{ ms: number, bytes: number, firstByteMs: number }> {
  const r = await runMeasured('curl', ['-s', '-o', '/dev/null', '-H', `authorization: Bearer ${server.token}`,
    '-w', '%{http_code} %{size_download} %{time_starttransfer}', `http://${server.baseUrl}/api/backup/download/${id}`])
  const [code, bytes, ttfb] = r.stdout.trim().split(' ')
  if (code !== '200') throw new Error(`download answered ${code}`)
  return { ms: r.ms, bytes: Number(bytes), firstByteMs: Number(ttfb) * 1000 }
}

const cluster = await startCluster()
let server: BenchServer | undefined
try {
  console.log(`filling a ~${sizeMb} MB database...`)
  await fillDatabase(cluster, 'bench', sizeMb)
  server = await startBenchServer({ cluster, db: 'bench' })
  const service = server.app.backupService
  const backup = await service.waitFor((await service.create({ compression: 'none' }, 'bench')).id)
  if (backup.status !== 'completed') throw new Error(`backup ${backup.status}: ${backup.error?.message}`)
  const file = join(server.config.backupDir, backup.name)

  // the token reaches curl through argv here: a throwaway bench token on a throwaway server
  const cat = await runMeasured('sh', ['-c', `cat '${file}' > /dev/null`]) // page cache warm for both
  const cat2 = await runMeasured('sh', ['-c', `cat '${file}' > /dev/null`])
  const first = await download(server, backup.id)
  const second = await download(server, backup.id)
  if (second.bytes !== backup.sizeBytes) throw new Error(`downloaded ${second.bytes} bytes, expected ${backup.sizeBytes}`)
  const catMs = Math.min(cat.ms, cat2.ms)
  const mbps = (ms: number): string => `${(backup.sizeBytes! / 1024 / 1024 / (ms / 1000)).toFixed(0)} MB/s`
  const ratio = catMs / second.ms
  console.log(`backup ${fmtMb(backup.sizeBytes!)} (custom format, no compression)`)
  line('cat file > /dev/null', `${fmtMs(catMs)}  ${mbps(catMs)}`)
  line('first download (integrity re-hash before 1st byte)', `${fmtMs(first.ms)}  ${mbps(first.ms)}  first byte after ${fmtMs(first.firstByteMs)}`)
  line('download with a fresh verification', `${fmtMs(second.ms)}  ${mbps(second.ms)}  first byte after ${fmtMs(second.firstByteMs)}`)
  line('throughput ratio download / cat', ratio.toFixed(2), '>= 0.8', ratio >= 0.8)
  const streamMs = second.ms - second.firstByteMs
  line('  streaming only (after the first byte) / cat', (catMs / streamMs).toFixed(2))
} finally {
  await server?.close()
  await cluster.stop()
}
