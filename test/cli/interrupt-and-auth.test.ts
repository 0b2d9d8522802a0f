import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { ListResult } from '../../schemas/backup.ts'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster, TEST_PASSWORD } from '../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import { BIN, memoryIO, runCli, spawnCli } from './cli-runner.ts'

// ~40 MB of poorly compressible text: at zstd -19 the dump takes several seconds, long enough to interrupt
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_interrupt_big', { rows: 200_000, padding: 160 })

function backupsDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-int-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('Ctrl-C during create cancels the dump: exit 130, status cancelled, no partial file left', async t => {
  const dir = backupsDir(t)
  const env = { DATABASE_URL: cluster.url('cli_interrupt_big'), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir }
  // the dump waits at the gate, so it is still running when Ctrl-C comes, however fast the machine
  const gate = await holdDumpGate(cluster, 'cli_interrupt_big')
  t.teardown(gate.release)
  // detached: its own process group, so signalling the group reaches pg_dump too, as a terminal's Ctrl-C does
  const run = spawnCli(['create', '--compression', 'zstd', '--level', '19'], env, { detached: true })
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => { if (/B\/s/.test(run.stderrText())) { run.child.stderr?.off('data', onData); resolve() } }
    run.child.stderr?.on('data', onData)
    run.child.once('close', () => reject(new Error(`create ended before any progress: ${run.stderrText()}`)))
  })
  // the first progress line can come before the first byte; the partial file shows the dump has begun writing
  await waitUntil(() => readdirSync(dir).some(f => f.endsWith('.partial')), 20_000, 'the partial file')
  t.pass('the dump is being written')
  process.kill(-run.child.pid!, 'SIGINT')
  const r = await run.result
  t.equal(r.code, 130, r.stderr)
  t.match(r.stderr, /pgkeep: backup \S+ cancelled\n$/)
  t.same(readdirSync(dir).filter(f => f.endsWith('.partial')), [], 'no .partial left')
  const io = memoryIO(env)
  t.equal(await dispatch(['list', '--json'], io), 0)
  const list = JSON.parse(io.out()) as ListResult
  t.equal(list.items.length, 1)
  t.equal(list.items[0].status, 'cancelled')
  t.equal(list.items[0].error?.code, 'CANCELLED')
})

t.test('a wrong password fails with PG_AUTH_FAILED, exit 1, and neither password appears in the output', async t => {
  const dir = backupsDir(t)
  const wrong = 'Wr0ng-Passw0rd-do-not-print'
  const url = cluster.url('cli_interrupt_big').replace(encodeURIComponent(TEST_PASSWORD), encodeURIComponent(wrong))
  const r = await runCli(['create'], { DATABASE_URL: url, PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir })
  t.equal(r.code, 1)
  t.match(r.stderr, /^pgkeep: PG_AUTH_FAILED: /m)
  for (const secret of [wrong, encodeURIComponent(wrong), TEST_PASSWORD, encodeURIComponent(TEST_PASSWORD)]) {
    t.notOk(r.stdout.includes(secret), 'not in stdout')
    t.notOk(r.stderr.includes(secret), 'not in stderr')
  }
  t.same(readdirSync(dir).filter(f => f.endsWith('.partial')), [], 'no .partial left')
})

t.test('on a terminal create draws a live bar that redraws in place, then prints the result', async t => {
  const dir = backupsDir(t)
  // script(1) gives the CLI a real pseudo-terminal, the way a person runs it
  const child = spawn('script', ['-qec', `${process.execPath} ${BIN} create --format plain --compression none`, '/dev/null'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm', DATABASE_URL: cluster.url('cli_interrupt_big'), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  child.stdout.on('data', (d: Buffer) => { text += d.toString() })
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))
  t.equal(code, 0, text)
  t.match(text, /\r\x1b\[2K\[[#.]+\] +\d+%/, 'a bar with a percentage, redrawn with carriage return + clear line')
  t.match(text, /completed default-cli_interrupt_big-\S+\.sql /, 'the result line')
})
