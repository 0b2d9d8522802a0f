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
