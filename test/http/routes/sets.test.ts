import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../../helpers/sample-db.ts'
import { auditLines, setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'sets_http_a', { rows: 100 })
await createSampleDatabase(cluster, 'sets_http_b', { rows: 100 })

const { app, as } = await setupApp(t, cluster, 'sets_http_a')
const UNKNOWN_ID = '01936f6e-0000-7000-8000-000000000000'

t.test('a set is created through /api/backup/create and read, pinned and deleted through /api/sets', async t => {
  const created = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { databases: ['sets_http_a', 'sets_http_b'] } })
  t.equal(created.statusCode, 202, created.body)
  const { backup, set } = created.json()
  t.equal(backup.kind, 'globals', 'backup is the set\'s first member')
  t.equal(set.id, backup.set.id)
  t.same(set.databases, ['sets_http_a', 'sets_http_b'])
  await app.backupService.waitForSet(set.id)

  const one = await as('viewer', { method: 'GET', url: `/api/sets/${set.id}` })
  t.equal(one.statusCode, 200)
  t.equal(one.json().set.status, 'completed')
  t.equal(one.json().set.members.length, 3)
  const list = await as('viewer', { method: 'GET', url: '/api/sets' })
  t.same(list.json().items.map((s: { id: string }) => s.id), [set.id])
  const backups = await as('viewer', { method: 'GET', url: '/api/backup/list' })
  t.equal(backups.json().items.filter((b: { set?: { id: string } }) => b.set?.id === set.id).length, 3, 'members stay in the backup list, each naming its set')

  const memberDelete = await as('admin', { method: 'DELETE', url: `/api/backup/${backup.id}` })
  t.equal(memberDelete.statusCode, 409, 'a member is not deleted alone')
  t.match(memberDelete.json().message, /delete the whole set/)

  const pinned = await as('operator', { method: 'POST', url: `/api/sets/${set.id}/pin`, payload: { pinned: true } })
  t.equal(pinned.statusCode, 200)
  t.ok(pinned.json().set.members.every((m: { pinned: boolean }) => m.pinned), 'pin acts on every member')
  const unpinOne = await as('operator', { method: 'POST', url: `/api/backup/${backup.id}/pin`, payload: { pinned: false } })
  t.equal(unpinOne.statusCode, 200)
  t.equal(app.backupService.getSet(set.id).pinned, false, 'a member\'s pin is the set\'s')

  const deleted = await as('admin', { method: 'DELETE', url: `/api/sets/${set.id}` })
  t.equal(deleted.statusCode, 200)
  t.equal((await as('viewer', { method: 'GET', url: `/api/sets/${set.id}` })).statusCode, 404)
  t.equal(app.backupService.list().total, 0, 'every member is gone')
  const audit = (await auditLines(app)).filter(l => l.backupId === set.id).map(l => l.action)
  t.same(audit, ['backup.create', 'backup.pin', 'backup.delete'], 'set actions are audited under the set id')
})

t.test('bad set requests are 4xx with code and message', async t => {
  const cases: [Record<string, unknown>, number, string, RegExp][] = [
    [{ allDatabases: true, databases: ['sets_http_a'] }, 400, 'INVALID_INPUT', /^databases: cannot be given with allDatabases/],
    [{ allDatabases: true, target: 'nope' }, 400, 'INVALID_INPUT', /^target: unknown target "nope"/],
    [{ databases: ['no_such_db'] }, 400, 'INVALID_INPUT', /no database "no_such_db"/],
    [{ allDatabases: 1 }, 400, 'INVALID_INPUT', /allDatabases/],
    [{ globals: true, schemas: ['public'], databases: ['sets_http_a'] }, 400, 'INVALID_INPUT', /^schemas: /],
  ]
  for (const [payload, status, code, message] of cases) {
    const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload })
    t.equal(res.statusCode, status, JSON.stringify(payload))
    t.equal(res.json().code, code)
    t.match(res.json().message, message)
  }
  t.equal((await as('viewer', { method: 'GET', url: `/api/sets/${UNKNOWN_ID}` })).statusCode, 404)
  t.equal((await as('operator', { method: 'POST', url: `/api/sets/${UNKNOWN_ID}/cancel` })).statusCode, 404)
  t.equal((await as('admin', { method: 'POST', url: `/api/sets/${UNKNOWN_ID}/restore`, payload: { target: 'nope!' } })).statusCode, 400)
  t.equal((await as('operator', { method: 'DELETE', url: `/api/sets/${UNKNOWN_ID}` })).statusCode, 403, 'delete is admin only')
  t.equal((await as('viewer', { method: 'GET', url: '/api/sets?status=bogus' })).statusCode, 400)
})

t.test('a single database with globals: true is a set of two members', async t => {
  const created = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { globals: true } })
  t.equal(created.statusCode, 202, created.body)
  const set = await app.backupService.waitForSet(created.json().set.id)
  t.equal(set.status, 'completed')
  t.same(set.members.map(m => m.kind ?? m.database), ['globals', 'sets_http_a'])
})

t.test('cleanup deletes an old set whole, its set manifest too, and lists every member it deleted', async t => {
  const make = async (): Promise<string> => {
    const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { databases: ['sets_http_b'] } })
    const set = await app.backupService.waitForSet(res.json().set.id)
    return set.id
  }
  const older = await make()
  const newer = await make()
  const olderSet = app.backupService.getSet(older)
  const res = await as('admin', { method: 'POST', url: '/api/backup/cleanup', payload: { policy: { keepLast: 1 }, target: 'default' } })
  t.equal(res.statusCode, 200, res.body)
  const deleted = res.json().deleted.map((b: { id: string }) => b.id)
  t.ok(olderSet.members.every(m => deleted.includes(m.id)), 'every member of the older set is deleted')
  t.match(res.json().deletedReasons[0].reason, /^member of the set /)
  t.equal((await as('viewer', { method: 'GET', url: `/api/sets/${older}` })).statusCode, 404)
  t.equal((await as('viewer', { method: 'GET', url: `/api/sets/${newer}` })).json().set.status, 'completed', 'the newest set is kept')
  t.notOk(existsSync(join(app.config.backupDir, `${olderSet.name}.set.json`)), 'its set manifest is gone')
})
