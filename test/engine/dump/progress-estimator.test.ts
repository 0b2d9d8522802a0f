import t from 'tap'
import { ProgressEstimator } from '../../../server/engine/dump/progress-estimator.ts'
import type { TableEstimate, TargetFacts } from '../../../server/engine/pg/inspector.ts'

function facts (tables: Array<Partial<TableEstimate> & { name: string, bytes: number }>): TargetFacts {
  const list = tables.map((x, i) => ({ relid: 1000 + i, schema: 'public', reltuples: -1, ...x }))
  return { serverVersion: '15.18', serverMajor: 15, tables: list, totalBytes: list.reduce((s, x) => s + x.bytes, 0) }
}

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let now = start
  return { now: () => now, advance: (ms) => { now += ms } }
}

t.test('percent is weighted by table bytes: finishing the big table counts for more than the small one', async t => {
  const c = clock()
  const e = new ProgressEstimator(facts([{ name: 'small', bytes: 100 }, { name: 'big', bytes: 900 }]), c)
  e.onTableStarted('public', 'small')
  t.equal(e.snapshot().percent, 0)
  e.onTableStarted('public', 'big')
  const s = e.snapshot()
  t.equal(s.percent, 10)
  t.equal(s.currentTable, 'public.big')
  t.equal(s.tablesDone, 1)
  t.equal(s.tablesTotal, 2)
})

t.test('COPY samples advance percent inside a big table, by tuples when reltuples is known', async t => {
  const e = new ProgressEstimator(facts([{ name: 'small', bytes: 1000 }, { name: 'big', bytes: 9000, reltuples: 300_000 }]), clock())
  e.onTableStarted('public', 'small')
  e.onTableStarted('public', 'big')
  const seen: number[] = []
  for (const tuples of [30_000, 150_000, 270_000]) {
    e.onCopySample({ relid: 1001, tuplesProcessed: tuples, bytesProcessed: 0 })
    seen.push(e.snapshot().percent!)
  }
  t.same(seen, [19, 55, 91])
})

t.test('COPY samples fall back to bytes against the table size when reltuples is unknown', async t => {
  const e = new ProgressEstimator(facts([{ name: 'big', bytes: 1000 }]), clock())
  e.onTableStarted('public', 'big')
  e.onCopySample({ relid: 1000, tuplesProcessed: 0, bytesProcessed: 250 })
  t.equal(e.snapshot().percent, 25)
})

t.test('percent never goes backwards, even when a later sample is smaller', async t => {
  const e = new ProgressEstimator(facts([{ name: 'big', bytes: 1000, reltuples: 100 }]), clock())
  e.onTableStarted('public', 'big')
  e.onCopySample({ relid: 1000, tuplesProcessed: 60, bytesProcessed: 0 })
  const before = e.snapshot().percent!
  e.onCopySample({ relid: 1000, tuplesProcessed: 10, bytesProcessed: 0 })
  t.equal(e.snapshot().percent, before)
  t.equal(before, 60)
})

t.test('percent stays at or below 99.9 until complete(), then is 100 with ETA 0', async t => {
  const e = new ProgressEstimator(facts([{ name: 'a', bytes: 10 }, { name: 'b', bytes: 10, reltuples: 5 }]), clock())
  e.onTableStarted('public', 'a')
  e.onTableStarted('public', 'b')
  // a stale reltuples: more rows copied than the planner thought existed
  e.onCopySample({ relid: 1001, tuplesProcessed: 50, bytesProcessed: 0 })
  e.onTableStarted('public', 'b')
  const s = e.snapshot()
  t.ok(s.percent! <= 99.9, `percent ${s.percent} <= 99.9`)
  e.complete()
  const done = e.snapshot()
  t.equal(done.percent, 100)
  t.equal(done.etaSeconds, 0)
  t.equal(done.tablesDone, 2)
  t.equal(done.currentTable, undefined)
})

t.test('tables pg_dump dumps that inspection did not list are tolerated and never push percent past 100', async t => {
  const e = new ProgressEstimator(facts([{ name: 'a', bytes: 100 }]), clock())
  e.onTableStarted('public', 'a')
  e.onTableStarted('public', 'created_meanwhile')
  e.onCopySample({ relid: 999_999, tuplesProcessed: 1e9, bytesProcessed: 1e12 })
  e.onTableStarted('other', 'also new')
  const s = e.snapshot()
  t.equal(s.currentTable, 'other.also new')
  t.equal(s.tablesTotal, 3)
  t.equal(s.tablesDone, 2)
  t.ok(s.percent! <= 99.9)
})

t.test('a random walk of events keeps percent monotonic and within bounds', async t => {
  const tables = Array.from({ length: 20 }, (_, i) => ({ name: `t${i}`, bytes: (i * 7919) % 1000 + 1, reltuples: i % 3 === 0 ? -1 : 500 }))
  const c = clock()
  const e = new ProgressEstimator(facts(tables), c)
  let seed = 42
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  let last = 0
  let raw = 0
  for (let i = 0; i < 500; i++) {
    const r = rnd()
    c.advance(Math.floor(rnd() * 300))
    if (r < 0.1) e.onTableStarted('public', `t${Math.floor(rnd() * 25)}`)
    else if (r < 0.7) e.onCopySample({ relid: 1000 + Math.floor(rnd() * 22), tuplesProcessed: Math.floor(rnd() * 800), bytesProcessed: Math.floor(rnd() * 2000) })
    else e.onBytes(raw += Math.floor(rnd() * 10_000))
    const p = e.snapshot().percent!
    if (p < last || p > 99.9) t.fail(`percent went from ${last} to ${p}`)
    last = p
  }
  t.pass(`ended at ${last}%`)
})

t.test('with no known table sizes percent is undefined and bytes and rate still report', async t => {
  const c = clock()
  const e = new ProgressEstimator({ serverVersion: '15.18', serverMajor: 15, tables: [{ relid: 1, schema: 'public', name: 'a', bytes: 0, reltuples: 0 }], totalBytes: 0 }, c)
  c.advance(1000)
  e.onBytes(5000)
  const s = e.snapshot()
  t.equal(s.percent, undefined)
  t.equal(s.etaSeconds, undefined)
  t.equal(s.bytes, 5000)
  t.equal(s.rate, 5000)
  e.complete()
  t.equal(e.snapshot().percent, 100)
})

t.test('rate is measured over the last five seconds, not since the start', async t => {
  const c = clock()
  const e = new ProgressEstimator(facts([{ name: 'a', bytes: 100 }]), c)
  let raw = 0
  // 10 s at 1 MB/s, then 10 s at 100 kB/s
  for (let i = 0; i < 100; i++) { c.advance(100); e.onBytes(raw += 100_000) }
  t.equal(e.snapshot().rate, 1_000_000)
  for (let i = 0; i < 100; i++) { c.advance(100); e.onBytes(raw += 10_000) }
  t.equal(e.snapshot().rate, 100_000)
  // pg_dump stalls: the rate decays to zero instead of remembering the past
  c.advance(6000)
  t.equal(e.snapshot().rate, 0)
})

t.test('ETA is undefined until there is signal, then follows the recent progress rate', async t => {
  const c = clock()
  const tables = Array.from({ length: 100 }, (_, i) => ({ name: `t${i}`, bytes: 1000 }))
  const e = new ProgressEstimator(facts(tables), c)
  e.onTableStarted('public', 't0')
  c.advance(500)
  e.onTableStarted('public', 't1')
  e.onTableStarted('public', 't2')
  t.equal(e.snapshot().percent, 2)
  t.equal(e.snapshot().etaSeconds, undefined, 'not within the first second')

  const slow = new ProgressEstimator(facts(tables), c)
  slow.onTableStarted('public', 't0')
  c.advance(3000)
  t.equal(slow.snapshot().etaSeconds, undefined, 'not before 1 % is done')

  // one table (1 %) every 100 ms: 10 %/s, so at 50 % about 5 s remain
  for (let i = 3; i <= 50; i++) { c.advance(100); e.onTableStarted('public', `t${i}`) }
  const s = e.snapshot()
  t.equal(s.percent, 50)
  t.ok(s.etaSeconds! >= 4 && s.etaSeconds! <= 6, `eta ${s.etaSeconds} is about 5 s`)
})

t.test('a COPY sample that arrives before its table line still counts, and a finished table ignores late samples', async t => {
  const e = new ProgressEstimator(facts([{ name: 'a', bytes: 500, reltuples: 100 }, { name: 'b', bytes: 500, reltuples: 100 }]), clock())
  e.onTableStarted('public', 'a')
  e.onCopySample({ relid: 1001, tuplesProcessed: 50, bytesProcessed: 0 })
  t.equal(e.snapshot().percent, 25)
  t.equal(e.snapshot().currentTable, 'public.a')
  e.onTableStarted('public', 'b')
  e.onCopySample({ relid: 1000, tuplesProcessed: 1, bytesProcessed: 0 })
  t.equal(e.snapshot().percent, 75)
})
