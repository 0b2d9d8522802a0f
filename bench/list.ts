// Issue 3 benchmark: GET /api/backup/list p99 with 10,000 backups in the registry (target < 20 ms),
// over a real loopback connection with keep-alive. BENCH_LIST_COUNT changes the registry size.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fakeBackup } from './fake-backups.ts'
import { Registry } from '../server/engine/store/registry.ts'
import { percentile, startBenchServer } from './http-setup.ts'
import { line } from './measure.ts'

const count = Number(process.env.BENCH_LIST_COUNT ?? 10_000)


const backupDir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-list-'))
try {
  // synthetic records written through the registry itself, as if 10,000 dumps had run
  const registry = await Registry.open(backupDir)
  await registry.update((all) => { for (let i = 0; i < count; i++) { const b = fakeBackup(i); all.set(b.id, b) } })
  const server = await startBenchServer({ backupDir })
  try {
    const queries = [
      '', '?page=40&pageSize=50', '?status=failed', '?q=alice&sort=sizeBytes&order=asc', '?target=t3&sort=duration',
      '?from=2025-06-01T00:00:00Z&to=2025-07-01T00:00:00Z', '?pageSize=500',
    ]
    const headers = { authorization: `Bearer ${server.token}` }
    const get = async (q: string): Promise<number> => {
      const started = performance.now()
      const res = await fetch(`http://${server.baseUrl}/api/backup/list${q}`, { headers })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`list${q} answered ${res.status}`)
      return performance.now() - started
    }
    for (let i = 0; i < 50; i++) await get(queries[i % queries.length]) // JIT and connection warm-up
    const byQuery = new Map<string, number[]>()
    const all: number[] = []
    for (let i = 0; i < 1400; i++) {
      const q = queries[i % queries.length]
      const ms = await get(q)
      all.push(ms)
      byQuery.set(q, [...(byQuery.get(q) ?? []), ms])
    }
    all.sort((a, b) => a - b)
    console.log(`${count} backups in the registry, ${all.length} sequential requests over loopback (client in-process)`)
    for (const [q, times] of byQuery) {
      times.sort((a, b) => a - b)
      line(`  list${q || ' (defaults)'}`, `p50 ${percentile(times, 50).toFixed(1)} ms  p99 ${percentile(times, 99).toFixed(1)} ms`)
    }
    const p99 = percentile(all, 99)
    line('GET /api/backup/list p50', `${percentile(all, 50).toFixed(1)} ms`)
    line('GET /api/backup/list p99', `${p99.toFixed(1)} ms`, '< 20 ms', p99 < 20)
  } finally {
    await server.close()
  }
} finally {
  rmSync(backupDir, { recursive: true, force: true })
}
