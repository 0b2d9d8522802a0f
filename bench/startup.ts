// Issue 12 target 2, start-up: `pgkeep --help` <= 0.15 s and `pgkeep list` on 1,000 backups <= 0.3 s, each the
// median of BENCH_STARTUP_RUNS runs of the real binary (bin/pgkeep.js, from its bundle: `npm run build` first),
// beside `node -e 0` on the same machine, with the CPU time of each (what wall time comes to on an idle machine).
// BENCH_STARTUP_COUNT changes the registry size.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fakeBackup } from './fake-backups.ts'
import { Registry } from '../server/engine/store/registry.ts'
import { fmtMs, line, runMeasured } from './measure.ts'

const count = Number(process.env.BENCH_STARTUP_COUNT ?? 1_000)
const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 15)
const bin = fileURLToPath(new URL('../bin/pgkeep.js', import.meta.url))
const bundle = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))


const TIME = '/usr/bin/time'

/** user + system CPU seconds of one run (GNU time): unlike wall time, barely moved by other load on the machine */
function cpuMs (cmd: string, args: string[], env: NodeJS.ProcessEnv): number | undefined {
  if (!existsSync(TIME)) return undefined
  const r = spawnSync(TIME, ['-f', 'CPU %U %S', cmd, ...args], { env, encoding: 'utf8' })
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr)
  return m ? (Number(m[1]) + Number(m[2])) * 1000 : undefined
}

const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function median (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number, rssMb: number, cpu?: number }> {
  const times: number[] = []
  const cpu: number[] = []
  let rss = 0
  for (let i = 0; i < runs; i++) {
    const r = await runMeasured(cmd, args, { env })
    if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}`)
    times.push(r.ms)
    rss = Math.max(rss, r.peakRssMb)
    const c = cpuMs(cmd, args, env)
    if (c !== undefined) cpu.push(c)
  }
  return { ms: mid(times), rssMb: rss, cpu: cpu.length > 0 ? mid(cpu) : undefined }
}

const cpuText = (r: { cpu?: number }): string => r.cpu === undefined ? '' : `, CPU ${fmtMs(r.cpu)}`

if (!existsSync(bundle)) console.log('dist/cli is missing: run `npm run build` first, or this measures the tsx start-up')
const backupDir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-startup-'))
try {
  const registry = await Registry.open(backupDir)
  await registry.update((all) => { for (let i = 0; i < count; i++) { const b = fakeBackup(i); all.set(b.id, b) } })
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, PGKEEP_BACKUP_DIR: backupDir }
  console.log(`median of ${runs} runs each; ${count} backups in the registry`)
  const bare = await median(process.execPath, ['-e', '0'], env)
  line('node -e 0 (baseline)', `${fmtMs(bare.ms)}${cpuText(bare)}`)
  const help = await median(process.execPath, [bin, '--help'], env)
  line('pgkeep --help', `${fmtMs(help.ms)} (${(help.ms / bare.ms).toFixed(1)}x node -e 0, peak ${help.rssMb.toFixed(0)} MB${cpuText(help)})`, '<= 0.15 s', help.ms <= 150)
  const list = await median(process.execPath, [bin, 'list'], env)
  line(`pgkeep list (${count} backups)`, `${fmtMs(list.ms)} (${(list.ms / bare.ms).toFixed(1)}x node -e 0, peak ${list.rssMb.toFixed(0)} MB${cpuText(list)})`, '<= 0.3 s', list.ms <= 300)
  const json = await median(process.execPath, [bin, 'list', '--json', '--page-size', '500'], env)
  line('pgkeep list --json --page-size 500', fmtMs(json.ms))
} finally {
  rmSync(backupDir, { recursive: true, force: true })
}
