import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface RunResult {
  ms: number
  peakRssMb: number
  stdout: string
  code: number | null
  /** user + system CPU of the command and every child it waited for: steadier than wall time on a shared machine */
  cpuMs: number
}

/** CPU of this process's waited-for children so far (/proc/self/stat cutime + cstime, in ms at 100 ticks/s). */
export function childrenCpuMs (): number {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')
    return (Number(fields[13]) + Number(fields[14])) * 10
  } catch {
    return 0
  }
}

/** Peak resident memory from /proc: VmHWM is the kernel's own high-water mark for the process. */
function readPeakRssKb (pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** Runs a command (no shell unless asked), timing it and sampling its peak RSS. */
export async function runMeasured (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv, shell?: boolean } = {}): Promise<RunResult> {
  const started = performance.now()
  const cpuBefore = childrenCpuMs()
  const child = spawn(cmd, args, { env: opts.env ?? process.env, shell: opts.shell ?? false, stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d })
  let peakKb = 0
  const sampler = setInterval(() => { peakKb = Math.max(peakKb, readPeakRssKb(child.pid as number) ?? 0) }, 20)
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  clearInterval(sampler)
  return { ms: performance.now() - started, peakRssMb: peakKb / 1024, stdout, code, cpuMs: childrenCpuMs() - cpuBefore }
}

/** Wall time and CPU (this process and the children it waited for meanwhile) of one call. */
export async function timedCall (run: () => Promise<unknown>): Promise<{ ms: number, cpuMs: number }> {
  const cpu = process.cpuUsage()
  const children = childrenCpuMs()
  const started = performance.now()
  await run()
  const ms = performance.now() - started
  const used = process.cpuUsage(cpu)
  return { ms, cpuMs: (used.user + used.system) / 1000 + childrenCpuMs() - children }
}

export function fmtMs (ms: number): string { return `${(ms / 1000).toFixed(2)} s` }
export function fmtMb (bytes: number): string { return `${(bytes / 1024 / 1024).toFixed(1)} MB` }
export function line (label: string, value: string, target?: string, ok?: boolean): void {
  const verdict = target === undefined ? '' : `   target ${target}: ${ok ? 'MET' : 'MISSED'}`
  console.log(`${label.padEnd(52)} ${value}${verdict}`)
}
