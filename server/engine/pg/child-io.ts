import { readFileSync } from 'node:fs'

/**
 * What a program reads before its input (its libraries, zstd -T0's /proc/cpuinfo): kept off the count so it never
 * passes the bytes really taken from the input. A few KiB on small machines, more with many cores.
 */
const START_UP_READS = 1024 * 1024

/**
 * Bytes a child has read so far, as the kernel counts them (/proc/PID/io `rchar`), less its start-up reads: a
 * live lower bound on how much of its input it has taken, for a stream that never passes through node.
 * undefined where there is no /proc (or the child is gone).
 */
export function inputBytesSoFar (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /^rchar:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))
    return m ? Math.max(0, Number(m[1]) - START_UP_READS) : undefined
  } catch {
    return undefined
  }
}
