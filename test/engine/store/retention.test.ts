import t from 'tap'
import type { Backup, RetentionPolicy } from '../../../schemas/backup.ts'
import { isoWeekKey, planRetention, validatePolicy } from '../../../server/engine/store/retention.ts'
import { makeBackup } from './fixtures.ts'

const NOW = new Date('2026-11-20T12:00:00Z')

function bk (createdAt: string, over: Partial<Backup> = {}): Backup {
  return makeBackup({ createdAt, target: 'prod', name: `prod-${createdAt.replace(/[:.]/g, '')}-${over.target ?? 'prod'}.dump`, ...over })
}

/** name -> reasons for kept ones, and the names deleted, for compact assertions */
function summary (backups: Backup[], policy: RetentionPolicy, opts?: { target?: string }): { keep: Record<string, string[]>, delete: string[] } {
  const plan = planRetention(backups, policy, NOW, opts)
  return {
    keep: Object.fromEntries(plan.keep.map(k => [k.backup.createdAt, k.reasons])),
    delete: plan.delete.map(b => b.createdAt),
  }
}

t.test('keepLast keeps the N newest and deletes the rest', async t => {
  const days = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05', '2026-11-06'].map(d => `${d}T03:00:00.000Z`)
  const s = summary(days.map(d => bk(d)), { keepLast: 3 })
  t.same(s.keep, {
    '2026-11-06T03:00:00.000Z': ['newest full of target', 'last 3'],
    '2026-11-05T03:00:00.000Z': ['last 3'],
    '2026-11-04T03:00:00.000Z': ['last 3'],
  })
  t.same(s.delete, ['2026-11-03T03:00:00.000Z', '2026-11-02T03:00:00.000Z', '2026-11-01T03:00:00.000Z'], 'newest first')
})

t.test('maxAgeDays keeps backups younger than that many days; exactly that old is deleted', async t => {
  const s = summary([
    bk('2026-11-19T12:00:00.000Z'), // 1 day
    bk('2026-11-13T14:24:00.000Z'), // 6.9 days
    bk('2026-11-13T12:00:00.000Z'), // exactly 7 days
    bk('2026-11-10T12:00:00.000Z'),
  ], { maxAgeDays: 7 })
  t.same(s.keep, {
    '2026-11-19T12:00:00.000Z': ['newest full of target', 'younger than 7 days'],
    '2026-11-13T14:24:00.000Z': ['younger than 7 days'],
  })
  t.same(s.delete, ['2026-11-13T12:00:00.000Z', '2026-11-10T12:00:00.000Z'])
  t.same(summary([bk('2026-11-20T01:00:00.000Z'), bk('2026-11-19T23:00:00.000Z')], { maxAgeDays: 0.5 }).delete,
    ['2026-11-19T23:00:00.000Z'], 'fractional days')
})

t.test('keepDaily keeps the newest backup of each of the last N UTC days that have backups, across a month boundary', async t => {
  const s = summary([
    bk('2026-10-30T01:00:00.000Z'), bk('2026-10-30T23:00:00.000Z'),
    bk('2026-10-31T01:00:00.000Z'), bk('2026-10-31T12:00:00.000Z'), bk('2026-10-31T23:59:59.000Z'),
    bk('2026-11-01T00:00:00.000Z'), bk('2026-11-01T08:00:00.000Z'),
    // no backup on Nov 2..4: days without backups do not use up the allowance
    bk('2026-11-05T09:00:00.000Z'),
  ], { keepDaily: 3 })
  t.same(s.keep, {
    '2026-11-05T09:00:00.000Z': ['newest full of target', 'daily 2026-11-05'],
    '2026-11-01T08:00:00.000Z': ['daily 2026-11-01'],
    '2026-10-31T23:59:59.000Z': ['daily 2026-10-31'],
  })
  t.same(s.delete, [
    '2026-11-01T00:00:00.000Z', '2026-10-31T12:00:00.000Z', '2026-10-31T01:00:00.000Z',
    '2026-10-30T23:00:00.000Z', '2026-10-30T01:00:00.000Z',
  ])
})

t.test('days are UTC days whatever offset the timestamp was written with', async t => {
  const s = summary([bk('2026-11-02T00:30:00+01:00'), bk('2026-11-01T20:00:00Z')], { keepDaily: 5 })
  t.same(s.keep, { '2026-11-02T00:30:00+01:00': ['newest full of target', 'daily 2026-11-01'] }, '00:30+01:00 is still Nov 1 in UTC')
  t.same(s.delete, ['2026-11-01T20:00:00Z'])
})

t.test('ISO weeks: Monday first, and the year boundary belongs to the week of its Thursday', async t => {
  t.equal(isoWeekKey(new Date('2026-01-01T00:00:00Z')), '2026-W01')
  t.equal(isoWeekKey(new Date('2027-01-01T00:00:00Z')), '2026-W53')
  t.equal(isoWeekKey(new Date('2027-01-03T23:59:59Z')), '2026-W53')
  t.equal(isoWeekKey(new Date('2027-01-04T00:00:00Z')), '2027-W01')
  t.equal(isoWeekKey(new Date('2024-12-30T00:00:00Z')), '2025-W01')
  t.equal(isoWeekKey(new Date('2021-01-03T00:00:00Z')), '2020-W53')
})

t.test('keepWeekly keeps the newest backup of each of the last N ISO weeks, across a year boundary', async t => {
  const s = summary([
    bk('2026-12-21T10:00:00.000Z'), // 2026-W52
    bk('2026-12-28T10:00:00.000Z'), // 2026-W53 (Monday)
    bk('2027-01-03T10:00:00.000Z'), // 2026-W53 (Sunday, already next year)
    bk('2027-01-04T10:00:00.000Z'), // 2027-W01
  ], { keepWeekly: 2 })
  t.same(s.keep, {
    '2027-01-04T10:00:00.000Z': ['newest full of target', 'weekly 2027-W01'],
    '2027-01-03T10:00:00.000Z': ['weekly 2026-W53'],
  })
  t.same(s.delete, ['2026-12-28T10:00:00.000Z', '2026-12-21T10:00:00.000Z'])
})

t.test('keepMonthly keeps the newest backup of each of the last N UTC months, across a year boundary', async t => {
  const s = summary([
    bk('2026-11-15T10:00:00.000Z'),
    bk('2026-12-01T10:00:00.000Z'),
    bk('2027-01-01T00:30:00+01:00'), // 2026-12-31T23:30Z
    bk('2027-01-01T00:00:00.000Z'),
  ], { keepMonthly: 2 })
  t.same(s.keep, {
    '2027-01-01T00:00:00.000Z': ['newest full of target', 'monthly 2027-01'],
    '2027-01-01T00:30:00+01:00': ['monthly 2026-12'],
  })
  t.same(s.delete, ['2026-12-01T10:00:00.000Z', '2026-11-15T10:00:00.000Z'])
})

t.test('a backup is kept when any rule keeps it, with every reason listed', async t => {
  const s = summary([
    bk('2026-09-10T10:00:00.000Z'), bk('2026-10-10T10:00:00.000Z'),
    bk('2026-11-18T10:00:00.000Z'), bk('2026-11-19T10:00:00.000Z'),
  ], { keepLast: 1, maxAgeDays: 3, keepDaily: 1, keepMonthly: 2 })
  t.same(s.keep, {
    '2026-11-19T10:00:00.000Z': ['newest full of target', 'last 1', 'younger than 3 days', 'daily 2026-11-19', 'monthly 2026-11'],
    '2026-11-18T10:00:00.000Z': ['younger than 3 days'],
    '2026-10-10T10:00:00.000Z': ['monthly 2026-10'],
  })
  t.same(s.delete, ['2026-09-10T10:00:00.000Z'])
})

t.test('pinned backups are always kept', async t => {
  const s = summary([bk('2025-01-01T00:00:00.000Z', { pinned: true }), bk('2026-11-01T00:00:00.000Z'), bk('2026-11-02T00:00:00.000Z')], { keepLast: 1 })
  t.same(s.keep, { '2026-11-02T00:00:00.000Z': ['newest full of target', 'last 1'], '2025-01-01T00:00:00.000Z': ['pinned'] })
  t.same(s.delete, ['2026-11-01T00:00:00.000Z'])
})

t.test('backups that are not completed are never counted nor deleted', async t => {
  const backups = [
    bk('2026-11-01T00:00:00.000Z'), bk('2026-11-02T00:00:00.000Z'), bk('2026-11-03T00:00:00.000Z'),
    bk('2026-11-04T00:00:00.000Z', { status: 'failed', error: { code: 'PG_DUMP_FAILED', message: 'x' } }),
    bk('2026-11-05T00:00:00.000Z', { status: 'cancelled' }),
    bk('2026-11-06T00:00:00.000Z', { status: 'verifying' }),
    bk('2026-11-07T00:00:00.000Z', { status: 'running' }),
    bk('2026-11-08T00:00:00.000Z', { status: 'queued' }),
    bk('2025-11-08T00:00:00.000Z', { status: 'failed' }),
  ]
  const s = summary(backups, { keepLast: 2 })
  t.same(s.keep, { '2026-11-03T00:00:00.000Z': ['newest full of target', 'last 2'], '2026-11-02T00:00:00.000Z': ['last 2'] })
  t.same(s.delete, ['2026-11-01T00:00:00.000Z'])
})

t.test('the newest completed backup of each target is kept even when every rule would delete it', async t => {
  const s = summary([
    bk('2025-01-01T00:00:00.000Z'), bk('2025-02-01T00:00:00.000Z'),
    bk('2025-03-01T00:00:00.000Z', { target: 'staging' }), bk('2025-01-15T00:00:00.000Z', { target: 'staging' }),
  ], { maxAgeDays: 30 })
  t.same(s.keep, { '2025-03-01T00:00:00.000Z': ['newest full of target'], '2025-02-01T00:00:00.000Z': ['newest full of target'] })
  t.same(s.delete, ['2025-01-15T00:00:00.000Z', '2025-01-01T00:00:00.000Z'])
})

t.test('rules count each target separately, and a target option scopes the whole plan', async t => {
  const backups = [
    bk('2026-11-01T00:00:00.000Z'), bk('2026-11-02T00:00:00.000Z'), bk('2026-11-03T00:00:00.000Z'),
    bk('2026-11-01T01:00:00.000Z', { target: 'staging' }), bk('2026-11-02T01:00:00.000Z', { target: 'staging' }),
    bk('2026-11-03T01:00:00.000Z', { target: 'staging' }),
  ]
  const both = summary(backups, { keepLast: 2 })
  t.same(both.delete, ['2026-11-01T01:00:00.000Z', '2026-11-01T00:00:00.000Z'], 'two kept per target')
  t.equal(Object.keys(both.keep).length, 4)
  const prodOnly = planRetention(backups, { keepLast: 1 }, NOW, { target: 'prod' })
  t.same(prodOnly.delete.map(b => b.createdAt), ['2026-11-02T00:00:00.000Z', '2026-11-01T00:00:00.000Z'])
  t.same(prodOnly.keep.map(k => k.backup.createdAt), ['2026-11-03T00:00:00.000Z'])
  t.ok([...prodOnly.delete, ...prodOnly.keep.map(k => k.backup)].every(b => b.target === 'prod'), 'staging appears nowhere')
  t.same(planRetention(backups, { keepLast: 1 }, NOW, { target: 'nope' }), { delete: [], deleteReasons: new Map(), keep: [] })
})

t.test('an empty or invalid policy is refused', async t => {
  const message = 'retention policy is empty: set keepLast, maxAgeDays, keepDaily, keepWeekly or keepMonthly'
  for (const policy of [undefined, {}, { keepLast: undefined }]) {
    t.throws(() => validatePolicy(policy), { code: 'INVALID_INPUT', message, details: { field: 'policy' } }, JSON.stringify(policy))
  }
  t.throws(() => planRetention([bk('2026-11-01T00:00:00.000Z')], {}, NOW), { code: 'INVALID_INPUT', message })
  t.throws(() => validatePolicy({ keepLast: 0 }), { code: 'INVALID_INPUT', details: { field: 'policy.keepLast' } })
  t.throws(() => validatePolicy({ maxAgeDays: -1 }), { code: 'INVALID_INPUT' })
  t.throws(() => validatePolicy({ keepDaily: 1.5 }), { code: 'INVALID_INPUT' })
  t.throws(() => validatePolicy({ keepLast: 1, keepForever: true } as RetentionPolicy), { code: 'INVALID_INPUT' })
  t.same(validatePolicy({ keepLast: 3, keepDaily: undefined }), { keepLast: 3 })
})

t.test('the plan is deterministic: same input, or the same backups in another order, give the same plan', async t => {
  const backups: Backup[] = []
  for (let i = 0; i < 60; i++) {
    const ms = Date.UTC(2026, 8, 1) + i * 29 * 3600_000
    backups.push(bk(new Date(ms).toISOString(), { target: i % 3 === 0 ? 'staging' : 'prod', pinned: i === 7 }))
  }
  // two backups sharing a timestamp: the id breaks the tie
  backups.push(bk(backups[30].createdAt, { target: backups[30].target }))
  const policy = { keepLast: 2, keepDaily: 4, keepWeekly: 3, keepMonthly: 2 }
  const snapshot = JSON.stringify(backups)
  const first = planRetention(backups, policy, NOW)
  t.same(planRetention(backups, policy, NOW), first)
  const shuffled = backups.slice().reverse()
  shuffled.push(...shuffled.splice(0, 17))
  t.same(planRetention(shuffled, policy, NOW), first)
  t.equal(JSON.stringify(backups), snapshot, 'the input is not modified')
  t.equal(first.delete.length + first.keep.length, backups.length, 'every completed backup is either kept or deleted')
})

const SCHEMA_ONLY = { schemaOnly: true, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false }
const DATA_ONLY = { ...SCHEMA_ONLY, schemaOnly: false, dataOnly: true }
const ONE_SCHEMA = { ...SCHEMA_ONLY, schemaOnly: false, schemas: ['billing'] }

t.test('schema-only backups cannot push full backups out: every rule counts full and partial backups apart', async t => {
  const fulls = ['2026-11-01', '2026-11-02', '2026-11-03'].map(d => bk(`${d}T03:00:00.000Z`))
  // an operator can create as many cheap schema-only backups as they like, newer than every full one
  const partials = ['2026-11-10', '2026-11-11', '2026-11-12', '2026-11-13'].map(d => bk(`${d}T03:00:00.000Z`, { options: SCHEMA_ONLY }))
  const s = summary([...fulls, ...partials], { keepLast: 2 })
  t.same(s.keep, {
    '2026-11-13T03:00:00.000Z': ['newest schema-only of target', 'last 2'],
    '2026-11-12T03:00:00.000Z': ['last 2'],
    '2026-11-03T03:00:00.000Z': ['newest full of target', 'last 2'],
    '2026-11-02T03:00:00.000Z': ['last 2'],
  })
  t.same(s.delete, ['2026-11-11T03:00:00.000Z', '2026-11-10T03:00:00.000Z', '2026-11-01T03:00:00.000Z'])
  const plan = planRetention([...fulls, ...partials], { keepLast: 2, maxAgeDays: 5 }, NOW)
  t.same(plan.delete.map(b => plan.deleteReasons.get(b.id)), [
    'schema-only backup #3 of target (newest first), 9 days old; kept by none of keepLast 2, maxAgeDays 5',
    'schema-only backup #4 of target (newest first), 10 days old; kept by none of keepLast 2, maxAgeDays 5',
    'full backup #3 of target (newest first), 19 days old; kept by none of keepLast 2, maxAgeDays 5',
  ], 'each deletion says why no rule kept it')
  t.equal(plan.deleteReasons.size, plan.delete.length)
})

t.test('the newest full backup of a target is never deleted, however many newer partial ones exist', async t => {
  const backups = [
    bk('2025-01-01T00:00:00.000Z'), bk('2025-02-01T00:00:00.000Z'),
    bk('2026-11-19T00:00:00.000Z', { options: SCHEMA_ONLY }),
    bk('2026-11-19T01:00:00.000Z', { options: DATA_ONLY }),
    bk('2026-11-19T02:00:00.000Z', { options: ONE_SCHEMA }),
  ]
  for (const policy of [{ keepLast: 1 }, { maxAgeDays: 7 }, { keepDaily: 1 }, { keepMonthly: 1 }]) {
    const s = summary(backups, policy)
    t.ok(s.keep['2025-02-01T00:00:00.000Z']?.includes('newest full of target'), `${JSON.stringify(policy)} keeps the newest full backup`)
    t.same(s.delete, ['2025-01-01T00:00:00.000Z'], `${JSON.stringify(policy)} deletes only the older full backup`)
  }
})

t.test('a partial backup is grouped with the backups that dumped the same selection', async t => {
  const backups = [
    bk('2026-11-01T00:00:00.000Z', { options: ONE_SCHEMA }), bk('2026-11-02T00:00:00.000Z', { options: ONE_SCHEMA }),
    bk('2026-11-03T00:00:00.000Z', { options: { ...ONE_SCHEMA, schemas: ['other'] } }),
    bk('2026-11-04T00:00:00.000Z', { options: { ...ONE_SCHEMA, schemas: [], excludeTables: ['public.log'] } }),
    bk('2026-11-05T00:00:00.000Z', { options: DATA_ONLY }),
  ]
  const s = summary(backups, { keepLast: 1 })
  t.same(s.delete, ['2026-11-01T00:00:00.000Z'], 'only the older -n billing backup goes')
  t.same(s.keep['2026-11-03T00:00:00.000Z'], ['newest -n other of target', 'last 1'])
  t.same(s.keep['2026-11-04T00:00:00.000Z'], ['newest -T public.log of target', 'last 1'])
  t.same(s.keep['2026-11-05T00:00:00.000Z'], ['newest data-only of target', 'last 1'])
})
