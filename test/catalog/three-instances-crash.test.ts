import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { startS3Peer } from '../helpers/s3-peer.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { backupOn, call, eventually, startFleet } from './fixtures/instances.ts'

// kill -9 of the `pgkeep serve` running a dump, one of three on a shared catalog (issue 14): its lease runs out,
// another instance marks the backup failed with INTERRUPTED and aborts its unfinished multipart upload.

const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'three_instances_crash_app'
await cluster.createDatabase('three_instances_crash_catalog')
// ~15 MB of rows: more than one 5 MiB part uncompressed, so the upload is a multipart one with a part stored
await createSampleDatabase(cluster, APP, { rows: 30_000, padding: 450 })
const peer = await startS3Peer(t, { bucket: 'pgkeep-three-crash' })
const fleet = await startFleet(t, {
  catalogCluster: cluster,
  catalogDatabase: 'three_instances_crash_catalog',
  targetCluster: cluster,
  targetDatabase: APP,
  peer,
  prefix: 'crash',
  // a short lease (heartbeats every third of it), so the death is noticed in seconds
  env: { PGKEEP_S3_PART_SIZE_MB: '5', PGKEEP_LEASE_SECONDS: '5' },
})
const admin = fleet.admin

t.test('kill -9 of the instance running a dump: another marks it failed (INTERRUPTED) and aborts its multipart upload', async t => {
  // the store takes the first part and then stops answering: the dump is mid-upload for as long as the test wants
  peer.holdParts(2)
  t.teardown(() => peer.releaseParts())
  const created = await call<{ backup: Backup }>(fleet.instances[0].url, 'POST', '/api/backup/create', { token: admin, body: { compression: 'none' } })
  t.equal(created.status, 202, 'the create on A is accepted', { body: created.body })
  const id = created.body.backup.id
  let running: Backup | undefined
  await eventually(async () => {
    running = await backupOn(fleet.instances[0].url, admin, id)
    return running.status === 'running' && running.instance !== undefined && peer.parts.length >= 1 && peer.openUploads().length === 1
  }, 60_000, 'the dump to be running with its first part stored')
  const upload = peer.openUploads()[0]
  t.match(upload.key, /^crash\//, 'the open upload is this dump\'s')
  const runner = fleet.runnerOf(running!)!
  t.ok(runner, `run by one of the three (${running!.instance})`)

  await runner.kill9()
  const killedAt = Date.now()
  peer.releaseParts()
  const survivor = fleet.instances.find(i => i !== runner)!
  let final: Backup | undefined
  // lease 5 s, renewed and swept every ~1.7 s: noticed 3.3 to 6.7 s after the death (docs/catalog.md)
  await eventually(async () => {
    final = await backupOn(survivor.url, admin, id)
    return final.status !== 'running'
  }, 60_000, 'another instance to take the dead one\'s job')
  const after = Math.round((Date.now() - killedAt) / 1000)
  t.equal(final!.status, 'failed', `failed ${after} s after the kill`)
  t.equal(final!.error?.code, 'INTERRUPTED')
  await eventually(() => peer.openUploads().length === 0, 30_000, 'the unfinished upload to be aborted')
  t.pass('the unfinished multipart upload was aborted')
  const { rows } = await fleet.catalog.query<{ state: string, instance_id: string }>('SELECT state, instance_id FROM pgkeep.jobs WHERE id = $1', [id])
  t.match(rows, [{ state: 'interrupted' }])

  const next = await call<{ backup: Backup }>(survivor.url, 'POST', '/api/backup/create', { token: admin, body: { schemaOnly: true, compression: 'none' } })
  t.equal(next.status, 202, 'a survivor takes a create')
  await eventually(async () => ['completed', 'failed', 'cancelled'].includes((await backupOn(survivor.url, admin, next.body.backup.id)).status),
    60_000, 'the next backup to end')
  const done = await backupOn(survivor.url, admin, next.body.backup.id)
  t.equal(done.status, 'completed', 'the survivors still take work', { error: done.error })
  t.not(fleet.runnerOf(done), runner, 'run by a live instance')
})
