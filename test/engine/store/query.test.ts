import t from 'tap'
import type { Backup, ListQuery } from '../../../schemas/backup.ts'
import { queryBackups } from '../../../server/engine/store/query.ts'
import { sortNewestFirst } from '../../../server/engine/store/registry-view.ts'
import { makeBackup } from './fixtures.ts'

const at = (day: number, seconds = 0): string => new Date(Date.UTC(2026, 0, day, 0, 0, seconds)).toISOString()

function rec (name: string, over: Partial<Backup>, day: number, durationS?: number): Backup {
  return makeBackup({
    name, createdAt: at(day), startedAt: at(day),
    ...(durationS === undefined ? {} : { finishedAt: at(day, durationS) }),
    ...over,
  })
}

const a = rec('alpha.dump', { target: 'prod', database: 'shop', createdBy: 'alice', sizeBytes: 300 }, 1, 10)
const b = rec('beta.sql', { target: 'staging', database: 'crm', createdBy: 'bob', status: 'failed' }, 2, 5)
const c = rec('Gamma.tar', { target: 'prod', database: 'Analytics', createdBy: 'carol', status: 'running' }, 3)
const d = rec('delta.dir', { target: 'prod', database: 'shop', createdBy: 'ALICE-bot', sizeBytes: 100, format: 'directory' }, 4, 60)
const e = rec('eps.dump', { target: 'staging', database: 'shop', createdBy: 'dave', status: 'cancelled', sizeBytes: 200 }, 5, 1)
// As the registry hands them over: newest first.
const all = [e, d, c, b, a]

const names = (query: ListQuery): string[] => queryBackups(all, query).items.map(x => x.name)

t.test('without a query: newest first, page 1 of 50', async t => {
  t.same(queryBackups(all, {}), { items: all, total: 5, page: 1, pageSize: 50 })
})

t.test('each filter narrows the list', async t => {
  t.same(names({ status: 'completed' }), ['delta.dir', 'alpha.dump'])
  t.same(names({ target: 'prod' }), ['delta.dir', 'Gamma.tar', 'alpha.dump'])
  t.same(names({ from: at(2), to: at(4) }), ['delta.dir', 'Gamma.tar', 'beta.sql'], 'from/to are inclusive')
  t.same(names({ from: '2026-01-02T01:00:00+01:00' }), ['eps.dump', 'delta.dir', 'Gamma.tar', 'beta.sql'], 'offsets are honoured')
  t.same(names({ to: at(1) }), ['alpha.dump'])
  t.same(names({ q: 'alice' }), ['delta.dir', 'alpha.dump'], 'q matches createdBy, case-insensitively')
  t.same(names({ q: 'ANALYTICS' }), ['Gamma.tar'], 'q matches the database')
  t.same(names({ q: 'stag' }), ['eps.dump', 'beta.sql'], 'q matches the target')
  t.same(names({ q: 'gamma' }), ['Gamma.tar'], 'q matches the name')
  t.same(names({ q: 'tarprod' }), [], 'q never matches across two fields')
  t.same(names({ q: '' }).length, 5)
  t.same(names({ status: 'completed', target: 'prod', q: 'shop', from: at(3) }), ['delta.dir'], 'filters combine')
  t.throws(() => queryBackups(all, { from: 'yesterday' }), { code: 'INVALID_INPUT', details: { field: 'from' } })
})

t.test('each sort orders both ways, with missing values last', async t => {
  t.same(names({ sort: 'createdAt', order: 'asc' }), ['alpha.dump', 'beta.sql', 'Gamma.tar', 'delta.dir', 'eps.dump'])
  t.same(names({ sort: 'name', order: 'asc' }), ['alpha.dump', 'beta.sql', 'delta.dir', 'eps.dump', 'Gamma.tar'], 'case-insensitive')
  t.same(names({ sort: 'name' }), ['Gamma.tar', 'eps.dump', 'delta.dir', 'beta.sql', 'alpha.dump'], 'desc by default')
  t.same(names({ sort: 'sizeBytes', order: 'asc' }), ['delta.dir', 'eps.dump', 'alpha.dump', 'Gamma.tar', 'beta.sql'])
  t.same(names({ sort: 'sizeBytes', order: 'desc' }), ['alpha.dump', 'eps.dump', 'delta.dir', 'Gamma.tar', 'beta.sql'])
  t.same(names({ sort: 'status', order: 'asc' }), ['eps.dump', 'delta.dir', 'alpha.dump', 'beta.sql', 'Gamma.tar'])
  t.same(names({ sort: 'status', order: 'desc' }), ['Gamma.tar', 'beta.sql', 'delta.dir', 'alpha.dump', 'eps.dump'], 'ties keep input order')
  t.same(names({ sort: 'target', order: 'asc' }), ['delta.dir', 'Gamma.tar', 'alpha.dump', 'eps.dump', 'beta.sql'])
  t.same(names({ sort: 'duration', order: 'asc' }), ['eps.dump', 'beta.sql', 'alpha.dump', 'delta.dir', 'Gamma.tar'])
  t.same(names({ sort: 'duration', order: 'desc' }), ['delta.dir', 'alpha.dump', 'beta.sql', 'eps.dump', 'Gamma.tar'])
})

t.test('equal sort values keep their input order in both directions', async t => {
  const same = Array.from({ length: 20 }, (_, i) => makeBackup({ name: `n${i}.dump`, sizeBytes: 7 }))
  const expected = same.map(x => x.id)
  t.same(queryBackups(same, { sort: 'sizeBytes', order: 'asc' }).items.map(x => x.id), expected)
  t.same(queryBackups(same, { sort: 'sizeBytes', order: 'desc' }).items.map(x => x.id), expected)
})

t.test('pagination edges', async t => {
  t.same(names({ pageSize: 2 }), ['eps.dump', 'delta.dir'])
  t.same(names({ pageSize: 2, page: 2 }), ['Gamma.tar', 'beta.sql'])
  t.same(queryBackups(all, { pageSize: 2, page: 3 }), { items: [a], total: 5, page: 3, pageSize: 2 }, 'last, partial page')
  t.same(queryBackups(all, { pageSize: 2, page: 4 }), { items: [], total: 5, page: 4, pageSize: 2 }, 'past the end: empty, total still told')
  t.same(queryBackups(all, { pageSize: 5 }).items.length, 5, 'exactly one full page')
  t.same(queryBackups([], {}), { items: [], total: 0, page: 1, pageSize: 50 })
  t.same(queryBackups(all, { page: 0, pageSize: 10_000 }), { items: all, total: 5, page: 1, pageSize: 500 }, 'out-of-range values are clamped')
  t.same(queryBackups(all, { status: 'completed', pageSize: 1, page: 2 }), { items: [a], total: 2, page: 2, pageSize: 1 }, 'total counts the filtered list')
})

t.test('10,000 backups are filtered, sorted and paged in well under 50 ms', async t => {
  const targets = ['prod', 'staging', 'dev', 'analytics']
  const statuses = ['completed', 'completed', 'completed', 'failed', 'cancelled'] as const
  const many = Array.from({ length: 10_000 }, (_, i) => makeBackup({
    name: `${targets[i % 4]}-db-${i}.dump`,
    target: targets[i % 4],
    status: statuses[i % 5],
    createdAt: new Date(Date.UTC(2026, 0, 1) + (10_000 - i) * 3600_000).toISOString(),
    startedAt: new Date(Date.UTC(2026, 0, 1) + (10_000 - i) * 3600_000).toISOString(),
    finishedAt: new Date(Date.UTC(2026, 0, 1) + (10_000 - i) * 3600_000 + (i % 97) * 1000).toISOString(),
    sizeBytes: (i * 7919) % 100_000,
  }))
  const queries: ListQuery[] = [
    {},
    { status: 'completed', target: 'prod', sort: 'sizeBytes', order: 'asc', page: 3 },
    { q: 'db-99', sort: 'name' },
    { from: '2026-06-01T00:00:00Z', to: '2026-09-01T00:00:00Z', sort: 'duration', pageSize: 500 },
  ]
  for (const query of queries) {
    queryBackups(many, query)
    // Best of a few runs: the machine is shared, a single run may be descheduled.
    let best = Infinity
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now()
      queryBackups(many, query)
      best = Math.min(best, performance.now() - t0)
    }
    t.ok(best < 50, `${JSON.stringify(query)} took ${best.toFixed(2)} ms`)
  }
  t.equal(queryBackups(many, { status: 'completed', target: 'prod' }).total, 1500)
})

t.test('in the registry\'s order (newestFirst) the default list is the same as the sorted one, ties and filters included', async t => {
  // same-second creations (a set's members) tie on createdAt: the registry orders those by id, descending
  const many: Backup[] = []
  for (let i = 0; i < 300; i++) {
    many.push(rec(`b${String(i).padStart(3, '0')}.dump`, { id: `0190${String(i).padStart(4, '0')}`, target: i % 3 === 0 ? 'prod' : 'dev', status: i % 7 === 0 ? 'failed' : 'completed' }, 1 + (i % 40)))
  }
  const inRegistryOrder = sortNewestFirst(many)
  for (const query of [{}, { status: 'failed' }, { target: 'prod', page: 2, pageSize: 20 }, { q: 'b1' }, { order: 'asc' }, { sort: 'name' }] as ListQuery[]) {
    t.same(queryBackups(inRegistryOrder, query, { newestFirst: true }), queryBackups(inRegistryOrder, query), JSON.stringify(query))
  }
})
