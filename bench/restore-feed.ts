// The restore's input path under CPU load: backup file -> zstd -d -> feedChild -> a child reading stdin, many times.
// A feed that ended before the child's pipe took its last bytes cut restores short about once in 300 runs on a busy
// 2-core machine (psql saw a COPY line end mid-row). Prints runs and how many delivered a different byte count.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createDecompressor } from '../server/engine/pg/codec.ts'
import { feedChild } from '../server/engine/pg/child-feed.ts'

const RUNS = Number(process.env.RESTORE_FEED_RUNS ?? 600)
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-feed-'))
const rows = Array.from({ length: 6000 }, (_, i) => `${i}\titem ${i}\t${randomBytes(16).toString('hex')}\t2024-01-01`)
const plain = Buffer.from(rows.join('\n') + '\n')
writeFileSync(join(dir, 'plain'), plain)
execFileSync('zstd', ['-q', '-f', join(dir, 'plain')])
// keep every core busy: the loss showed only when the reading child was slow to be scheduled
const burners = cpus().map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }))
let short = 0
const started = Date.now()
try {
  for (let i = 0; i < RUNS; i++) {
    const codec = await createDecompressor('zstd')
    const child = spawn('wc', ['-c'], { stdio: ['pipe', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise(resolve => child.once('close', resolve))
    await pipeline(createReadStream(join(dir, 'plain.zst'), { highWaterMark: 1024 * 1024 }), codec.stream, feedChild(child.stdin, { drainAfterClose: false }))
    await exited
    if (Number(out.trim()) !== plain.length) short++
  }
} finally {
  for (const b of burners) b.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
console.log(`restore feed under load: ${RUNS} runs of ${plain.length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s, ${short} delivered short (target 0) ${short === 0 ? 'OK' : 'MISSED'}`)
