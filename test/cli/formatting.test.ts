import t from 'tap'
import { EXIT, exitCodeFor, exitCodeForFailedJob } from '../../server/cli/exit-codes.ts'
import { ERROR_CODES } from '../../schemas/errors.ts'
import { formatBytes, formatDuration, plural, table } from '../../server/cli/output.ts'
import { ProgressReporter, renderProgress } from '../../server/cli/progress-bar.ts'
import type { Progress } from '../../schemas/backup.ts'
import { PassThrough } from 'node:stream'

const ID = '01936f1e-8a2b-7c3d-8e4f-0123456789ab'

t.test('every engine error code maps to one of the documented exit codes', async t => {
  for (const code of ERROR_CODES) t.ok([0, 1, 2, 3, 130].includes(exitCodeFor(code)), code)
  t.equal(exitCodeFor('INTEGRITY_FAILED'), EXIT.INTEGRITY)
  t.equal(exitCodeFor('CANCELLED'), 130)
  t.equal(exitCodeFor('INVALID_INPUT'), 2)
  t.equal(exitCodeFor('CONFIG_INVALID'), 2)
  t.equal(exitCodeFor('PG_AUTH_FAILED'), 1)
  t.equal(exitCodeFor('SOMETHING_NEW_FROM_A_NEWER_SERVER'), 1, 'an unknown code is an operation failure')
})

t.test('a job that failed after it was accepted never exits as a usage error', async t => {
  t.equal(exitCodeForFailedJob('INVALID_INPUT'), EXIT.FAILED, 'e.g. its target vanished from the config')
  t.equal(exitCodeForFailedJob('CONFIG_INVALID'), EXIT.FAILED)
  t.equal(exitCodeForFailedJob('INTEGRITY_FAILED'), EXIT.INTEGRITY)
  t.equal(exitCodeForFailedJob('CANCELLED'), EXIT.CANCELLED)
  t.equal(exitCodeForFailedJob('PG_DUMP_FAILED'), EXIT.FAILED)
})

t.test('byte sizes are in IEC units (KiB, MiB, GiB) like the dashboard; durations read like a stopwatch', async t => {
  t.equal(formatBytes(0), '0 B')
  t.equal(formatBytes(999), '999 B')
  t.equal(formatBytes(1023.6), '1.0 KiB', 'never "1024 B"')
  t.equal(formatBytes(1536), '1.5 KiB')
  t.equal(formatBytes(123_456_789), '118 MiB')
  t.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB')
  t.equal(formatBytes(5.2 * 1024 ** 4), '5.2 TiB')
  t.equal(formatBytes(undefined), '-')
  t.equal(formatDuration(0.4), '0s')
  t.equal(formatDuration(59), '59s')
  t.equal(formatDuration(62), '1m02s')
  t.equal(formatDuration(3 * 3600 + 5 * 60), '3h05m')
  t.equal(formatDuration(undefined), '-')
})

t.test('tables align columns and do not pad the last one', async t => {
  t.equal(table(['A', 'LONG'], [['xyz', 'v'], ['1', '2']]), 'A    LONG\nxyz  v\n1    2\n')
})

const progress = (p: Partial<Progress>): Progress => ({ backupId: ID, bytes: 0, rate: 0, tablesDone: 0, tablesTotal: 0, ...p })

t.test('the progress line shows bar, percent, bytes, rate, ETA, tables and the current table', async t => {
  const line = renderProgress(progress({ bytes: 12_300_000, rate: 4_500_000, percent: 50, etaSeconds: 62, currentTable: 'public.orders', tablesDone: 3, tablesTotal: 10 }), 120)
  t.match(line, /^\[#{15}\.{15}\]\s+50%/)
  t.match(line, /11\.7 MiB/)
  t.match(line, /4\.3 MiB\/s/)
  t.match(line, /ETA 1m02s/)
  t.match(line, /3\/10 tables/)
  t.match(line, /public\.orders$/)
})

t.test('the progress line never claims more than 100% and never exceeds the terminal width', async t => {
  t.match(renderProgress(progress({ percent: 140 }), 80), /100%/)
  const narrow = renderProgress(progress({ percent: 10, bytes: 1e9, rate: 1e6, etaSeconds: 9999, currentTable: 'x'.repeat(200), tablesTotal: 5 }), 40)
  t.ok(narrow.length < 40)
  t.match(renderProgress(progress({ percent: 10 }), 0), /^\[#*\.+\] +10%/, 'a terminal reporting 0 columns gets the default width')
})

t.test('without an estimate the line shows bytes and rate only', async t => {
  t.equal(renderProgress(progress({ bytes: 2048, rate: 1024 })), '2.0 KiB  1.0 KiB/s')
})

t.test('on a terminal the bar redraws one line; a message is printed above it', async t => {
  const out = new PassThrough()
  let text = ''
  out.on('data', d => { text += String(d) })
  const r = new ProgressReporter(out, { tty: true, columns: 80 })
  r.update(progress({ bytes: 1024 }))
  r.update(progress({ bytes: 2048 }))
  r.message('hello')
  r.done()
  t.notMatch(text.replace(/hello\n/, ''), /\n/, 'only the message ends a line')
  t.match(text, /\r\x1b\[2K2\.0 KiB.*\r\x1b\[2Khello\n2\.0 KiB/s)
})

t.test('without a terminal progress is a plain line at most every few seconds', async t => {
  const out = new PassThrough()
  let text = ''
  out.on('data', d => { text += String(d) })
  let now = 0
  const r = new ProgressReporter(out, { tty: false, plainIntervalMs: 5000, now: () => now })
  for (let i = 0; i < 100; i++) { now = i * 100; r.update(progress({ bytes: i * 1000 })) }
  t.equal(text.split('\n').filter(Boolean).length, 2, 'one at 0 s and one at 5 s in 10 s of updates')
  t.notMatch(text, /\x1b|\r/, 'no terminal control characters')
})

t.test('without a terminal the last progress line is the final figures: 100% and every byte once the job completed', async t => {
  const out = new PassThrough()
  let text = ''
  out.on('data', d => { text += String(d) })
  let now = 0
  const r = new ProgressReporter(out, { tty: false, plainIntervalMs: 5000, now: () => now })
  for (let i = 1; i <= 30; i++) { now = i * 100; r.update(progress({ bytes: i * 1024 * 1024, rate: 1024 * 1024, percent: i * 3, etaSeconds: 30 - i, tablesDone: i, tablesTotal: 31, currentTable: `public.t${i}` })) }
  r.done(true)
  const lines = text.trim().split('\n')
  t.equal(lines.length, 2, 'the first sample, then the final figures')
  t.match(lines[0], /  3%  1\.0 MiB/)
  t.equal(lines[1], `[${'#'.repeat(30)}]  100%  30.0 MiB  1.0 MiB/s  31/31 tables`)
})

t.test('a job that stopped ends the log with where it stopped, printed once', async t => {
  const out = new PassThrough()
  let text = ''
  out.on('data', d => { text += String(d) })
  let now = 0
  const r = new ProgressReporter(out, { tty: false, plainIntervalMs: 5000, now: () => now })
  r.update(progress({ bytes: 1024, percent: 10 }))
  now = 1000
  r.update(progress({ bytes: 4096, percent: 40 }))
  r.done(false)
  t.match(text.trim().split('\n').at(-1), / 40%  4\.0 KiB/)
  const once = new PassThrough()
  let onceText = ''
  once.on('data', d => { onceText += String(d) })
  const r2 = new ProgressReporter(once, { tty: false })
  r2.update(progress({ bytes: 1024, percent: 10 }))
  r2.done(false)
  t.equal(onceText.trim().split('\n').length, 1, 'the last sample already shown is not repeated')
})

t.test('a count of one takes the singular', async t => {
  t.equal(plural(1, 'backup'), '1 backup')
  t.equal(plural(0, 'backup'), '0 backups')
  t.equal(plural(2, 'backup'), '2 backups')
})
