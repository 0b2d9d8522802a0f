import t from 'tap'
import { uuidv7 } from 'uuidv7'
import type { Backup } from '../../../schemas/backup.ts'
import { setProgress, setStatus } from '../../../schemas/sets.ts'
import { retentionUnits } from '../../../server/engine/sets/set-retention.ts'
import { planRetention } from '../../../server/engine/store/retention.ts'
import { makeBackup } from '../store/fixtures.ts'

const DAY = 86_400_000
const now = new Date('2026-11-30T12:00:00Z')

/** A set of `dbs` databases plus globals, created `daysAgo` days before now. */
function makeSet (daysAgo: number, dbs: string[], over: Partial<Backup> = {}): Backup[] {
  const set = { id: uuidv7(), name: `default-set-${daysAgo}`, weightBytes: 100 }
  const createdAt = new Date(now.getTime() - daysAgo * DAY).toISOString()
  return [
    makeBackup({ createdAt, database: '', kind: 'globals', format: 'plain', set: { ...set, weightBytes: 0 }, ...over }),
    ...dbs.map(database => makeBackup({ createdAt, database, set, ...over })),
  ]
}

t.test('retention keeps or deletes a set whole, counting it once, apart from single backups', async t => {
  const sets = [makeSet(1, ['a', 'b']), makeSet(2, ['a', 'b', 'c']), makeSet(3, ['a'])]
  const singles = [makeBackup({ database: 'a', createdAt: new Date(now.getTime() - 5 * DAY).toISOString() })]
  const { units, members } = retentionUnits([...sets.flat(), ...singles])
  t.equal(units.length, 4, 'three sets and one backup')
  const plan = planRetention(units, { keepLast: 2 }, now)
  t.same(plan.delete.map(u => u.id), [sets[2][0].set!.id], 'keepLast 2 counts sets, not members: the oldest set goes')
  t.same(members.get(plan.delete[0].id)!.map(m => m.id), sets[2].map(m => m.id), 'and with it every member')
  t.ok(plan.keep.some(k => k.backup.id === singles[0].id), 'a single-database backup is its own series, not pushed out by sets')
})

t.test('a set with a failed member is not completed, so no rule counts or deletes it; a pinned member keeps the set', async t => {
  const failed = makeSet(1, ['a', 'b'])
  failed[2] = { ...failed[2], status: 'failed' }
  const pinned = makeSet(9, ['a'])
  pinned[1] = { ...pinned[1], pinned: true }
  const old = makeSet(8, ['a'])
  const newest = makeSet(0, ['a'])
  const { units } = retentionUnits([...failed, ...pinned, ...old, ...newest])
  const plan = planRetention(units, { keepLast: 1 }, now)
  t.same(plan.delete.map(u => u.id), [old[0].set!.id])
  t.notOk(plan.keep.some(k => k.backup.id === failed[0].set!.id), 'the failed set is neither kept by a rule nor deleted')
  t.ok(plan.keep.find(k => k.backup.id === pinned[0].set!.id)?.reasons.includes('pinned'))
})

t.test('set status and progress come from the members', async t => {
  const m = makeSet(0, ['a', 'b'], { status: 'queued' })
  t.equal(setStatus(m), 'queued')
  m[0] = { ...m[0], status: 'completed' }
  m[1] = { ...m[1], status: 'running' }
  t.equal(setStatus(m), 'running')
  const p = setProgress('x', m, id => (id === m[1].id ? { percent: 50 } : undefined))
  t.equal(p.percent, 25, 'half of the first of two equal databases')
  t.equal(p.currentDatabase, 'a')
  m[1] = { ...m[1], status: 'failed' }
  t.equal(setStatus(m), 'running', 'not ended while a member is still to run')
  m[2] = { ...m[2], status: 'completed' }
  t.equal(setStatus(m), 'failed', 'a failed member fails the set once all ended')
  t.equal(setProgress('x', m, () => undefined).percent, 100)
  t.equal(setStatus(m.map(x => ({ ...x, status: 'completed' as const }))), 'completed')
  t.equal(setStatus([{ status: 'completed' }, { status: 'cancelled' }]), 'cancelled')
})
