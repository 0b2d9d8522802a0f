import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startInlineCheck } from '../../../server/engine/verify/inline-check.ts'
import { findPgBinDir } from '../../helpers/pg-cluster.ts'

const timers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length

// A verdict can arrive before the dump job reports the end of its input (pg_restore stops at the archive's end).
// The stuck-check timer armed then kept every process that dumped with verify: inline alive 30 s longer (and a
// scheduler test file past tap's timeout).
t.test('the end of the input reported after the verdict arms no timer', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-inline-timer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const check = await startInlineCheck('plain', dir, findPgBinDir())
  const tap = check.tap()
  tap.end('-- PostgreSQL database dump\n\n-- PostgreSQL database dump complete\n\n')
  await check.verdict
  const before = timers()
  check.inputEnded()
  t.equal(timers(), before, 'no timer left behind')
  await check.kill()
})

t.test('the end of the input reported while the check still runs arms the stuck-check timer', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-inline-timer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const check = await startInlineCheck('plain', dir, findPgBinDir())
  const before = timers()
  check.inputEnded()
  t.equal(timers(), before + 1, 'armed')
  await check.kill()
  await check.verdict
  t.equal(timers(), before, 'and cleared with the verdict')
})

// A plain/gzip dump stopped before it ended its tap left node's write end of the FIFO open: node's own read of the
// other end then never saw EOF and sat on the thread pool, keeping the process alive (a scheduler test file hung
// past tap's timeout in CI).
t.test('a process whose check was killed while node held the tap open exits by itself', async t => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'inline-check-killed.mts'), findPgBinDir()], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  // it exits within a second; 30 s only bounds the hang this is about
  const hang = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code, signal] = await once(child, 'exit') as [number | null, string | null]
  clearTimeout(hang)
  t.equal(out.trim(), 'killed')
  t.same({ code, signal }, { code: 0, signal: null }, 'exited by itself')
})
