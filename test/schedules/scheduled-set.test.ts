import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Backup, CleanupResult } from '../../schemas/backup.ts'
import type { BackupSet } from '../../schemas/sets.ts'
import { startCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { build } from '../helpers/app.ts'
import { runCli } from '../cli/cli-runner.ts'

// a server of its own: a whole-server target takes every database there is
const cluster = await startCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'sched_set_one', { rows: 200 })
await createSampleDatabase(cluster, 'sched_set_two', { rows: 200 })
const config = testConfig(cluster, 'postgres')
t.teardown(config.cleanup)
config.targets.default.databases = '*'

/** A 'finished' event, with the set as the catalog had it when the event came. */
interface Finished { backup: Backup, set?: BackupSet, reported?: BackupSet, retention?: CleanupResult }

t.test('a schedule on a whole-server target makes one verified set per run, and its retention keeps or deletes sets whole', async t => {
  const { app, as, service } = await build(t, config)
  const fired: Backup[] = []
  const finished: Finished[] = []
  app.scheduler.on('fired', e => fired.push(e.backup))
  app.scheduler.on('finished', e => finished.push({ ...e, reported: e.set, set: e.backup.set && service.getSet(e.backup.set.id) }))
  // every second: croner's protect and the overlap check keep it to one run at a time, so the ticks that come
  // while a set is still running are skipped (reported missed), not started beside it
  const created = await as('admin', {
    method: 'POST', url: '/api/schedules',
    payload: { name: 'whole-server', cron: '* * * * * *', backup: {}, retention: { keepLast: 2 } },
  })
  t.equal(created.statusCode, 201, created.body)
  await waitUntil(() => finished.length >= 3, 120_000, 'three scheduled runs')
  await app.scheduler.update('whole-server', { enabled: false })
  // a run that fired before the schedule was disabled is let finish (its retention too) before anything is looked at
  await waitUntil(() => finished.length === fired.length, 120_000, 'the last run to finish')

  for (const [i, run] of finished.entries()) {
    const set = run.set
    t.ok(set, `run ${i + 1} made a set`)
    t.equal(run.reported?.id, set?.id, `run ${i + 1}'s finished event names its set`)
    t.equal(set?.status, 'completed', `run ${i + 1}'s set completed when the run finished: ${JSON.stringify(set?.error)}`)
    t.same(set?.databases, ['sched_set_one', 'sched_set_two'], 'every database of the server (the empty postgres and the templates left out)')
    t.same(set?.members.map(m => m.kind ?? 'database'), ['globals', 'database', 'database'], 'the globals and one member per database')
    for (const m of set?.members ?? []) {
      t.equal(m.scheduleId, 'whole-server')
      t.equal(m.options.verify, 'inline', `${m.name}: scheduled, so verified inline by default`)
      t.match(m.verification, { ok: true, method: m.kind === 'globals' ? 'inline:sql-trailer' : 'inline:pg_restore' }, `${m.name} arrived verified`)
    }
    if (i > 0) t.ok(Date.parse(fired[i].createdAt) >= Date.parse(finished[i - 1].set!.finishedAt!), `run ${i + 1} started only after the previous set ended, not after its first member`)
    // keepLast 2 counts sets: each run from the third on deletes the set two runs before it, whole
    const expected = i >= 2 ? finished[i - 2].set!.members.map(m => m.id).sort() : []
    t.same((run.retention?.deleted ?? []).map(b => b.id).sort(), expected, `run ${i + 1}'s retention deleted ${i >= 2 ? `every member of run ${i - 1}'s set` : 'nothing'}`)
  }

  const gone = finished.slice(0, -2).map(r => r.set!)
  const kept = finished.slice(-2).map(r => r.set!)
  t.same(service.listSets({}).items.map(s => s.id).sort(), kept.map(s => s.id).sort(), 'the catalog holds the two newest sets')
  const files = readdirSync(config.backupDir)
  for (const s of gone) {
    for (const m of s.members) {
      t.throws(() => service.get(m.id), { code: 'NOT_FOUND' }, `${m.name} is gone from the catalog`)
      t.notOk(files.some(f => f.startsWith(m.name)), `${m.name} and its manifest are gone from disk`)
    }
    t.notOk(existsSync(join(config.backupDir, `${s.name}.set.json`)), `${s.name}: its set manifest is gone`)
  }
  for (const s of kept) {
    t.ok(existsSync(join(config.backupDir, `${s.name}.set.json`)), `${s.name}: its set manifest is kept`)
    for (const m of s.members) t.ok(files.includes(m.name), `${m.name} is kept`)
  }

  // the API shows each scheduled set as one entry with its members
  const sets = await as('viewer', { method: 'GET', url: '/api/sets' })
  t.equal(sets.statusCode, 200)
  const items = (sets.json() as { items: BackupSet[] }).items.filter(s => kept.some(k => k.id === s.id))
  t.equal(items.length, 2)
  t.ok(items.every(s => s.status === 'completed' && s.members.length === 3), 'each set is one completed entry of three members')
  const list = await as('viewer', { method: 'GET', url: '/api/backup/list?pageSize=500' })
  const flat = (list.json() as { items: Backup[] }).items.filter(b => b.set?.id === kept[1].id)
  t.equal(flat.length, 3, 'the backup list keeps its members, each naming its set')

  // and so does `pgkeep list`: one row per set, its members under it
  const cli = await runCli(['list', '--status', 'completed'], { DATABASE_URL: cluster.url('postgres'), PGKEEP_BACKUP_DIR: config.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir })
  t.equal(cli.code, 0, cli.stderr)
  for (const s of kept) {
    t.match(cli.stdout, new RegExp(`^${s.id} +${s.name} \\(set: 2 databases \\+ globals\\) +default +completed`, 'm'), `${s.name} is one row`)
  }
  for (const s of gone) t.notMatch(cli.stdout, s.id, `${s.name}, deleted, is not listed`)
})
