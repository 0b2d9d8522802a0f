import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { PROGRESS_PACE_MS, ProgressFeed } from '../../../server/engine/dump/progress-feed.ts'
import type { ProgressSnapshot } from '../../../server/engine/dump/progress-estimator.ts'
import type { TargetFacts } from '../../../server/engine/pg/inspector.ts'

const MiB = 1024 * 1024
const facts: TargetFacts = {
  serverVersion: '15.18',
  serverMajor: 15,
  tables: [{ relid: 1000, schema: 'public', name: 'big', bytes: 100 * MiB, reltuples: 1000 }],
  totalBytes: 100 * MiB,
}

function feed (): { feed: ProgressFeed, reports: Array<ProgressSnapshot & { at: number }> } {
  const reports: Array<ProgressSnapshot & { at: number }> = []
  return { feed: new ProgressFeed(facts, p => reports.push({ ...p, at: Date.now() })), reports }
}

t.test('unpaced, each visible change is reported as it comes', async t => {
  const { feed: f, reports } = feed()
  t.teardown(() => f.stop())
  f.onTableStarted('public', 'big')
  f.onBytes(1 * MiB)
  f.onBytes(1 * MiB + 10) // the same MiB, the same percent: nothing new to tell
  f.onCopySample({ relid: 1000, tuplesProcessed: 500, bytesProcessed: 0 })
  t.same(reports.map(r => [r.bytes, r.percent, r.currentTable]), [
    [0, 0, 'public.big'],
    [MiB, 0, 'public.big'],
    [MiB + 10, 50, 'public.big'],
  ])
})

t.test('paced, it reports once per slot, each report with the byte count read at that moment', async t => {
  const { feed: f, reports } = feed()
  t.teardown(() => f.stop())
  let bytes = 0
  const readAt: number[] = []
  f.pace(() => { readAt.push(Date.now()); bytes += 2 * MiB; return bytes })
  // between two reports: folded into the next one, not reported on their own
  f.onTableStarted('public', 'big')
  f.onCopySample({ relid: 1000, tuplesProcessed: 250, bytesProcessed: 0 })
  t.equal(reports.length, 0, 'nothing reported before the first slot')
  await sleep(PROGRESS_PACE_MS * 4 + 60)
  t.ok(reports.length >= 2 && reports.length <= 5, `${reports.length} reports in four slots`)
  t.same(reports[0]!.currentTable, 'public.big', 'the table started before the slot is in its report')
  t.equal(reports[0]!.percent, 25, 'so is the COPY sample')
  // every report carries the count read for it: none repeats an older count
  t.same(reports.map(r => r.bytes), readAt.slice(0, reports.length).map((_, i) => (i + 1) * 2 * MiB))
  for (let i = 1; i < reports.length; i++) {
    t.ok(reports[i]!.at - reports[i - 1]!.at >= PROGRESS_PACE_MS - 2, 'reports are a slot apart')
  }
})

t.test('paced with nothing new, it still reports once a second so rate and ETA age', async t => {
  const { feed: f, reports } = feed()
  t.teardown(() => f.stop())
  f.pace(() => 5 * MiB)
  await sleep(1000 + PROGRESS_PACE_MS * 4)
  t.ok(reports.length >= 2 && reports.length <= 3, `${reports.length} reports in 1.8 s: the first, then the heartbeat`)
  t.ok(reports.every(r => r.bytes === 5 * MiB))
})

t.test('unpace: the byte count comes by onBytes again, and changes are reported as they come', async t => {
  const { feed: f, reports } = feed()
  t.teardown(() => f.stop())
  f.pace(() => undefined) // no /proc: the count shows at the end only
  f.unpace()
  f.onBytes(7 * MiB)
  t.equal(reports.at(-1)?.bytes, 7 * MiB)
  f.complete()
  t.equal(reports.at(-1)?.percent, 100)
  const n = reports.length
  await sleep(PROGRESS_PACE_MS * 2)
  t.equal(reports.length, n, 'nothing after complete')
})
