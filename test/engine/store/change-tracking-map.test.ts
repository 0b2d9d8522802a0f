import t from 'tap'
import { ChangeTrackingMap } from '../../../server/engine/store/change-tracking-map.ts'
import { RegistryView, sortNewestFirst } from '../../../server/engine/store/registry-view.ts'
import { makeBackup } from './fixtures.ts'

t.test('a change-tracking map reads like a Map over its base, leaves the base alone and says what changed', async t => {
  const base = new Map([['a', 1], ['b', 2], ['c', 3]])
  const m = new ChangeTrackingMap(base)
  const plain = new Map(base)
  for (const map of [m, plain] as Array<Map<string, number>>) {
    map.set('b', 20)
    map.delete('c')
    map.set('d', 4)
    map.delete('d')
    map.set('e', 5)
    map.delete('a')
    map.set('a', 10)
  }
  t.same([...m.entries()].sort(), [...plain.entries()].sort())
  t.equal(m.size, plain.size)
  t.equal(m.get('c'), undefined)
  t.notOk(m.has('d'))
  t.same(base, new Map([['a', 1], ['b', 2], ['c', 3]]), 'the base is untouched')
  const { set, deleted } = m.changes()
  t.same(set.sort((x, y) => x - y), [5, 10, 20])
  t.same(deleted, ['c'])
})

t.test('setting values while iterating visits each key once, as a Map does', async t => {
  const m = new ChangeTrackingMap(new Map([['a', 1], ['b', 2]]))
  const seen: string[] = []
  for (const [k, v] of m) {
    seen.push(k)
    m.set(k, v * 10)
  }
  t.same(seen, ['a', 'b'])
  t.same([...m.values()], [10, 20])
})

t.test('a registry view applies a few changes in place and keeps the newest-first order a full sort gives', async t => {
  const view = new RegistryView()
  const records = Array.from({ length: 200 }, (_, i) => makeBackup({ createdAt: new Date(Date.UTC(2026, 0, 1) + (i % 50) * 60_000).toISOString() }))
  view.replace(records)
  const changed = { ...records[10], createdAt: '2027-01-01T00:00:00.000Z' }
  const added = makeBackup({ createdAt: '2026-01-01T00:20:00.000Z' })
  const expected = sortNewestFirst([...records.filter(b => b.id !== records[10].id && b.id !== records[20].id), changed, added])
  view.apply([changed, added], [records[20].id])
  t.same(view.all().map(b => b.id), expected.map(b => b.id))
  t.equal(view.get(records[20].id), undefined)
  t.equal(view.findByName(records[20].name), undefined)
  t.equal(view.findByName(changed.name), changed)
  t.equal(view.size, 200)
})
