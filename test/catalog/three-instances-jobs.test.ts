import t from 'tap'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { Backup } from '../../schemas/backup.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { startS3Peer } from '../helpers/s3-peer.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { backupOn, call, eventually, openViewer, pidOfInstanceId, startFleet } from './fixtures/instances.ts'

// Backups through the shared job queue of three `pgkeep serve` processes (issue 14): whichever instance is
// asked, any instance runs the job, once; a viewer and a cancel on one instance reach a job running on another.

const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'three_instances_jobs_app'
await cluster.createDatabase('three_instances_jobs_catalog')
await createSampleDatabase(cluster, APP, { rows: 50, padding: 10 })
const peer = await startS3Peer(t, { bucket: 'pgkeep-three-jobs' })
const fleet = await startFleet(t, {
  catalogCluster: cluster,
  catalogDatabase: 'three_instances_jobs_catalog',
  targetCluster: cluster,
  targetDatabase: APP,
  peer,
  prefix: 'jobs',
  // two workers each; clients come through one proxy, which names them (the create limit is per client address)
  env: { PGKEEP_CONCURRENCY: '2', PGKEEP_TRUST_PROXY: '1' },
})
const admin = fleet.admin
const ENDED = ['completed', 'failed', 'cancelled']

const statusOf = async (base: string, id: string): Promise<Backup> => await backupOn(base, admin, id)

t.test('100 concurrent creates spread over A, B and C: each runs exactly once, none lost, on more than one instance', async t => {
  const N = 100
  const replies = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const base = fleet.instances[i % 3].url
    const res = await fetch(`${base}/api/backup/create`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'x-forwarded-for': `10.0.${i % 10}.1` },
      body: JSON.stringify({ schemaOnly: true, compression: 'none' }),
    })
    return { status: res.status, body: await res.json() as { backup: Backup } }
  }))
  t.same(replies.filter(r => r.status !== 202).map(r => r.body), [], 'every create is accepted')
  const ids = replies.map(r => r.body.backup.id)
  t.equal(new Set(ids).size, N, 'one backup per create')

  const list = async (): Promise<Backup[]> => (await call<{ items: Backup[] }>(fleet.instances[0].url, 'GET', '/api/backup/list?pageSize=200', { token: admin })).body.items
  await eventually(async () => (await list()).filter(b => ENDED.includes(b.status)).length >= N, 120_000, 'every backup to end')
  const backups = await list()
  t.equal(backups.length, N, 'no backup more, none less')
  t.same(backups.map(b => b.id).sort(), [...ids].sort(), 'exactly the created ones')
  t.same(backups.filter(b => b.status !== 'completed').map(b => ({ status: b.status, error: b.error })), [], 'every one completed')

  const ran = new Map<string, number>()
  for (const b of backups) ran.set(b.instance ?? 'none', (ran.get(b.instance ?? 'none') ?? 0) + 1)
  t.notOk(ran.has('none'), 'every backup names the instance that ran it')
  t.ok(ran.size > 1, `more than one instance ran them (${[...ran.values()].join(' + ')})`)
  t.ok([...ran.keys()].every(id => fleet.instances.some(i => i.pid === pidOfInstanceId(id))), 'each one of the three')

  const { rows: jobs } = await fleet.catalog.query<{ id: string, state: string, attempt: number }>(
    'SELECT id, state, attempt FROM pgkeep.jobs WHERE id = ANY($1::text[])', [ids])
  t.equal(jobs.length, N, 'one job row per backup')
  t.same(jobs.filter(j => j.state !== 'done' || j.attempt !== 1), [], 'each claimed once and done')

  // a job run twice would have written its dump twice, or a second one beside it
  const objects = await peer.client().send(new ListObjectsV2Command({ Bucket: peer.bucket, Prefix: 'jobs/', MaxKeys: 1000 }))
  const dumps = (objects.Contents ?? []).map(o => o.Key!).filter(k => !k.endsWith('.manifest.json'))
  t.same(dumps.sort(), backups.map(b => `jobs/${b.name}`).sort(), 'one stored dump per backup')
  t.same(peer.openUploads(), [], 'no upload left open')
})

t.test('a viewer on one instance follows a job running on another, and a cancel sent there ends it cancelled', async t => {
  const gate = await holdDumpGate(cluster, APP)
  t.teardown(() => gate.release())
  const viewers = await Promise.all(fleet.instances.map(async i => await openViewer(t, i.url, admin)))

  const created = await call<{ backup: Backup }>(fleet.instances[0].url, 'POST', '/api/backup/create', { token: admin, body: { compression: 'none' } })
  t.equal(created.status, 202, 'the create on A is accepted', { body: created.body })
  const id = created.body.backup.id
  let running: Backup | undefined
  await eventually(async () => {
    running = await statusOf(fleet.instances[0].url, id)
    return running.status === 'running' && running.instance !== undefined
  }, 30_000, 'the job to be claimed and running')
  const runner = fleet.runnerOf(running!)
  t.ok(runner, `run by one of the three (${running!.instance})`)
  // the first instance that does not run it is where the viewer watches and the cancel is sent
  const here = fleet.instances.findIndex(i => i !== runner)
  const viewer = viewers[here]
  const progressSeen = (): boolean => viewer.events.some(e => e.type === 'progress' && e.backupId === id)
  // the dump waits on the gate, so its progress is the estimator's heartbeat, relayed through the catalog
  await eventually(progressSeen, 30_000, `${fleet.instances[here].label}'s viewer to see progress of the job on ${runner!.label}`)
  t.ok(progressSeen(), `the viewer on ${fleet.instances[here].label} sees progress of the job running on ${runner!.label}`)

  const cancel = await call(fleet.instances[here].url, 'POST', `/api/backup/${id}/cancel`, { token: admin })
  t.ok(cancel.status < 300, 'the cancel is taken', { status: cancel.status, body: cancel.body })
  await eventually(async () => ENDED.includes((await statusOf(fleet.instances[here].url, id)).status), 30_000, 'the job to end')
  const ended = await statusOf(fleet.instances[here].url, id)
  t.equal(ended.status, 'cancelled', 'the job ended cancelled', { error: ended.error })
  await eventually(() => viewer.events.some(e => e.type === 'status' && e.backupId === id && (e as { status?: string }).status === 'cancelled'),
    15_000, 'the viewer to see the job cancelled')
  t.pass('the viewer saw the job end cancelled')
  t.same(peer.openUploads(), [], 'no upload left open')
  const { rows } = await fleet.catalog.query<{ state: string }>('SELECT state FROM pgkeep.jobs WHERE id = $1', [id])
  t.same(rows.map(r => r.state), ['cancelled'], 'so did its job row')
})
