import { spawn } from 'node:child_process'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { feedChild } from '../../../server/engine/pg/child-feed.ts'

t.test('a child that is slow to read still gets the last bytes: the feed finishes only once its pipe took them all', async t => {
  const last = 3620
  // the child reads nothing for a while (as pg_restore or psql while the server works), so the first 64 KiB fill
  // its pipe and the last bytes wait in node's queue; they are below stdin's high-water mark, so write() says
  // "go on" while they still wait there
  const child = spawn('sh', ['-c', 'sleep 0.5; wc -c'], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise(resolve => child.once('close', resolve))
  const chunks = [Buffer.alloc(65536, 'x'), Buffer.alloc(last, 'y')]
  await pipeline(Readable.from(chunks), feedChild(child.stdin, { drainAfterClose: false }))
  await exited
  // the contract; the race it guards (stdin destroyed with bytes still queued) is measured by bench/restore-feed.ts
  t.equal(Number(out.trim()), 65536 + last, 'every byte reached the child')
})
