import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { startS3Peer } from '../helpers/s3-peer.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { call, eventually, login, pidOfInstanceId, startFleet } from './fixtures/instances.ts'

// Three `pgkeep serve` processes on one catalog database and one S3-compatible store, driven over HTTP only
// (issue 14): schedules, users, tokens and the login limit behave as one pgkeep whichever instance is asked.

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('three_instances_catalog')
await createSampleDatabase(cluster, 'three_instances_app', { rows: 50, padding: 10 })
const peer = await startS3Peer(t, { bucket: 'pgkeep-three' })
const fleet = await startFleet(t, {
  catalogCluster: cluster,
  catalogDatabase: 'three_instances_catalog',
  targetCluster: cluster,
  targetDatabase: 'three_instances_app',
  peer,
  prefix: 'shared',
})
const [A, B, C] = fleet.instances
const admin = fleet.admin

t.test('a schedule every second, created on A, runs once per tick for 10 ticks across the three (or skips a tick once while its last run goes on)', async t => {
  const created = await call(A.url, 'POST', '/api/schedules', {
    token: admin,
    body: { name: 'every-second', cron: '* * * * * *', timezone: 'UTC', backup: { schemaOnly: true, compression: 'none' } },
  })
  t.equal(created.status, 201, 'the schedule is created', { body: created.body })
  type Tick = { tick_at: Date, outcome: 'fired' | 'missed', instance_id: string, job_id: string | null }
  const tickRows = async (): Promise<Tick[]> => (await fleet.catalog.query<Tick>(
    "SELECT tick_at, outcome, instance_id, job_id FROM pgkeep.schedule_ticks WHERE schedule = 'every-second' ORDER BY tick_at")).rows
  const fired = async (): Promise<Tick[]> => (await tickRows()).filter(r => r.outcome === 'fired')
  // counted from the first tick all three instances arm, so none of the ten is one only A knew of
  await eventually(async () => (await call(C.url, 'GET', '/api/schedules/every-second', { token: admin })).status === 200, 15_000, 'C to arm the schedule')
  await eventually(async () => (await fired()).length >= 11, 60_000, 'eleven ticks')
  // a tick whose previous run is still going is skipped and recorded as an overlap: a dump here can outlast a second
  const skipped = new Set<number>()
  const readSkips = async (): Promise<void> => {
    for (const i of fleet.instances) {
      const schedule = await call<{ missed?: Array<{ scheduledAt: string, reason: string }> }>(i.url, 'GET', '/api/schedules/every-second', { token: admin })
      for (const m of schedule.body.missed ?? []) if (m.reason === 'overlap') skipped.add(Date.parse(m.scheduledAt))
    }
  }
  // disabled rather than removed, so its record of skipped ticks can still be read once no instance takes ticks
  t.equal((await call(B.url, 'PATCH', '/api/schedules/every-second', { token: admin, body: { enabled: false } })).status, 200)
  await eventually(async () => (await Promise.all(fleet.instances.map(async i =>
    (await call<{ enabled: boolean }>(i.url, 'GET', '/api/schedules/every-second', { token: admin })).body.enabled))).every(e => !e),
  15_000, 'every instance to stop the schedule')
  const scheduled = async (): Promise<Backup[]> => (await call<{ items: Backup[] }>(A.url, 'GET', '/api/backup/list?pageSize=200', { token: admin }))
    .body.items.filter(b => b.scheduleId === 'every-second')
  await eventually(async () => (await scheduled()).every(b => ['completed', 'failed', 'cancelled'].includes(b.status)), 30_000, 'the scheduled runs to end')
  const runs = await scheduled()
  const ticks = await fired()
  await readSkips()
  t.equal((await call(C.url, 'DELETE', '/api/schedules/every-second', { token: admin })).status, 200)

  // a tick no instance fired in time is a `missed` row (its gap counted) once a sweep notices it: a second with
  // neither was lost without a word
  const rows = (await tickRows()).filter(r => r.tick_at >= ticks[0].tick_at && r.tick_at <= ticks[ticks.length - 1].tick_at)
  const seconds = rows.map(r => r.tick_at.getTime() / 1000)
  t.same(seconds.slice(1).filter((s, i) => s - seconds[i] !== 1 && rows[i + 1].outcome !== 'missed'), [],
    `no second without its tick from the first (${ticks[0].tick_at.toISOString()}) to the last`)
  t.ok(ticks.length >= 11, `${ticks.length} ticks, each taken by one instance`)
  t.ok(ticks.every(r => fleet.instances.some(i => i.pid === pidOfInstanceId(r.instance_id))), 'by one of the three')
  t.same(runs.filter(b => b.status !== 'completed').map(b => b.error), [], 'every run completed')
  // three instances that each ran every tick would make three backups of it
  t.ok(runs.length <= ticks.length, `none ran twice: ${runs.length} backups of ${ticks.length} ticks`)
  const unaccounted = ticks.length - runs.length - ticks.filter(r => skipped.has(r.tick_at.getTime())).length
  t.ok(unaccounted <= 0, `none dropped: each tick ran or was recorded skipped (${runs.length} ran, ${skipped.size} skipped)`)
  if (ticks.every(r => r.job_id !== null)) {
    // with the job queue each tick names the job it queued: the mapping is exact
    const ids = new Set(runs.map(b => b.id))
    t.same(ticks.filter(r => !ids.has(r.job_id!)).map(r => r.tick_at), [], 'each tick\'s job is one of the backups')
    t.equal(ids.size, runs.length, 'and each backup one tick\'s job')
  }
})

t.test('a token created and revoked on A: used on B, then refused on B and C at once', async t => {
  const made = await call<{ token: string, info: { id: string } }>(A.url, 'POST', '/api/tokens', { token: admin, body: { name: 'ci', role: 'operator' } })
  t.equal(made.status, 201, 'the token is made', { body: made.body })
  const token = made.body.token
  t.equal((await call(B.url, 'GET', '/api/backup/list', { token })).status, 200, 'B takes the token A made')
  t.equal((await call(A.url, 'DELETE', `/api/tokens/${made.body.info.id}`, { token: admin })).status, 200)
  const onB = await call<{ code: string }>(B.url, 'GET', '/api/backup/list', { token })
  t.equal(onB.status, 401, 'refused on B with no wait')
  t.equal(onB.body.code, 'UNAUTHORIZED')
  t.equal((await call(C.url, 'GET', '/api/backup/list', { token })).status, 401, 'and on C')
})

t.test('a user created on B logs in on C, and that session works on A', async t => {
  const added = await call(B.url, 'POST', '/api/users', { token: admin, body: { username: 'carol', role: 'viewer', password: 'carol password 1' } })
  t.equal(added.status, 201, 'the user is added', { body: added.body })
  const session = await login(C.url, 'carol', 'carol password 1')
  t.equal(session.status, 200, 'carol logs in on C', { body: session.body })
  const me = await call<{ username: string, role: string }>(A.url, 'GET', '/api/auth/me', { token: session.body.token })
  t.equal(me.status, 200)
  t.match(me.body, { username: 'carol', role: 'viewer' })
  t.equal((await call(A.url, 'POST', '/api/backup/create', { token: session.body.token, body: {} })).status, 403, 'the role is the one given on B')
})

t.test('the login limit is shared: five failures spread over A, B and C refuse the sixth attempt anywhere', async t => {
  t.equal((await call(A.url, 'POST', '/api/users', { token: admin, body: { username: 'dave', role: 'viewer', password: 'dave password 1' } })).status, 201)
  const statuses: number[] = []
  for (const instance of [A, B, C, A, B]) statuses.push((await login(instance.url, 'dave', 'not the password')).status)
  t.same(statuses, [401, 401, 401, 401, 401], 'five wrong passwords, each refused as wrong')
  const sixth = await login(C.url, 'dave', 'dave password 1')
  t.equal(sixth.status, 429, 'the sixth, on C, is over the limit even with the right password')
  t.match(sixth.body, { code: 'RATE_LIMITED' })
  t.equal((await login(B.url, 'carol', 'carol password 1')).status, 200, 'another account is not held by dave\'s limit')
})
