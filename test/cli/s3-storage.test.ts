import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { PEER_CREDENTIALS, startS3Peer } from '../helpers/s3-peer.ts'
import { createSampleDatabase, databaseFingerprint } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { runCli, spawnCli } from './cli-runner.ts'
import { newAgeKey } from '../helpers/age-keys.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_s3_shop', { rows: 60000, padding: 400 })
const source = await databaseFingerprint(cluster, 'cli_s3_shop')
const peer = await startS3Peer(t, { bucket: 'pgkeep-cli' })

/** What a newcomer sets: the bucket, the endpoint, the keys (and path style for a self-hosted store). */
function s3Env (dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: cluster.url('cli_s3_shop'),
    PGKEEP_BACKUP_DIR: dir,
    PGKEEP_PG_BIN_DIR: cluster.binDir,
    PGKEEP_STORAGE: 's3://pgkeep-cli/nightly',
    AWS_ENDPOINT_URL_S3: peer.endpoint,
    AWS_ACCESS_KEY_ID: PEER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: PEER_CREDENTIALS.secretAccessKey,
    PGKEEP_S3_FORCE_PATH_STYLE: 'true',
    ...extra,
  }
}

function freshDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-s3-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const registryOf = (dir: string): Backup[] => existsSync(join(dir, 'registry.json'))
  ? (JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')) as { backups: Backup[] }).backups
  : []

t.test('create, list, validate, download and restore against the bucket, nothing of the dump on local disk', async t => {
  const dir = freshDir(t)
  const env = s3Env(dir)
  const doctor = await runCli(['doctor'], env)
  t.match(doctor.stdout, /ok\s+primary storage\s+s3:\/\/pgkeep-cli\/nightly: reachable, credentials valid/)

  const created = await runCli(['create', '--json'], env)
  t.equal(created.code, 0, created.stderr)
  const backup = JSON.parse(created.stdout) as Backup
  t.match(backup, { status: 'completed', storage: 's3://pgkeep-cli/nightly' })
  t.notOk(readdirSync(dir).some(n => n.startsWith('default-')), 'no data file, partial or manifest in the local dir')

  const listed = await runCli(['list', '--json'], env)
  t.equal(JSON.parse(listed.stdout).items[0].id, backup.id)
  const validated = await runCli(['validate', backup.id, '--json'], env)
  t.equal(validated.code, 0, validated.stderr)
  t.match(JSON.parse(validated.stdout), { verification: { ok: true, method: 'sha256+pg_restore' } })

  const out = join(dir, 'copy.dump.zst')
  const downloaded = await runCli(['download', backup.id, '--output', out, '--json'], env)
  t.equal(downloaded.code, 0, downloaded.stderr)
  t.equal(JSON.parse(downloaded.stdout).sha256, backup.sha256)

  const restored = await runCli(['restore', backup.id, '--database', 'cli_s3_restored', '--create'], env)
  t.equal(restored.code, 0, restored.stderr)
  t.equal(await databaseFingerprint(cluster, 'cli_s3_restored'), source)

  // the bucket describes itself: a new machine with only these variables rebuilds the catalog
  const elsewhere = freshDir(t)
  const reindexed = await runCli(['reindex', '--json'], s3Env(elsewhere))
  t.equal(reindexed.code, 0, reindexed.stderr)
  t.match(JSON.parse((await runCli(['list', '--json'], s3Env(elsewhere))).stdout).items[0], { id: backup.id, sha256: backup.sha256, storage: 's3://pgkeep-cli/nightly' })
})

t.test('wrong credentials: doctor says so, and create is refused with STORAGE_AUTH_FAILED, naming no secret', async t => {
  const dir = freshDir(t)
  const env = s3Env(dir, { AWS_SECRET_ACCESS_KEY: 'not-the-secret-at-all' })
  const doctor = await runCli(['doctor'], env)
  t.equal(doctor.code, 1)
  t.match(doctor.stdout, /FAIL\s+primary storage\s+s3:\/\/pgkeep-cli\/nightly: /)
  const created = await runCli(['create', '--json'], env)
  t.equal(created.code, 1)
  t.match(created.stderr, /STORAGE_AUTH_FAILED|credentials/)
  t.notMatch(created.stderr + created.stdout + doctor.stdout, /not-the-secret-at-all/)
  // a fresh catalog is built from the bucket's manifests first: a bucket pgkeep cannot read is a refusal to start
  t.match(created.stderr, /pgkeep: STORAGE_AUTH_FAILED: s3:\/\/pgkeep-cli\/nightly: the store refused pgkeep's credentials/)
  t.same(registryOf(dir), [], 'nothing recorded')

  // keys that stop working later: pgkeep starts (clean-up waits for the next start), the job fails and says why
  const good = await runCli(['create', '--json', '--compression', 'gzip'], s3Env(dir))
  t.equal(good.code, 0, good.stderr)
  const later = await runCli(['create', '--json'], env)
  t.equal(later.code, 1)
  t.match(later.stderr, /start-up clean-up postponed: listing unfinished writes in s3:\/\/pgkeep-cli\/nightly/)
  t.match(registryOf(dir).find(b => b.status === 'failed'), { error: { code: 'STORAGE_AUTH_FAILED', message: /refused pgkeep's credentials/ } })
  t.notMatch(later.stderr + later.stdout, /not-the-secret-at-all/)
})

t.test('kill -9 mid-upload: no object, and the next start aborts the multipart upload and marks the job INTERRUPTED', async t => {
  const dir = freshDir(t)
  const env = s3Env(dir)
  const partsBefore = peer.parts.length
  const cli = spawnCli(['create', '--compression', 'none'], env)
  t.teardown(() => { cli.child.kill('SIGKILL') })
  // the upload is under way once a part has arrived; from then on the store stops answering, so the job is
  // caught mid-upload whatever the machine's speed
  await waitUntil(() => peer.parts.length > partsBefore, 60000, 'the first part to arrive')
  peer.setHanging(true)
  const running = registryOf(dir).find(b => b.status === 'running')
  t.ok(running, 'the job is running')
  t.ok(peer.openUploads().some(u => u.key === `nightly/${running!.name}`), 'its multipart upload is open')
  cli.child.kill('SIGKILL')
  await cli.result
  peer.setHanging(false)
  t.ok(readdirSync(join(dir, '.pgkeep', 'uploads')).length > 0, 'the upload id was journaled before the crash')

  const next = await runCli(['list', '--json'], env)
  t.equal(next.code, 0, next.stderr)
  t.match(JSON.parse(next.stdout).items.find((b: Backup) => b.id === running!.id), { status: 'failed', error: { code: 'INTERRUPTED' } })
  t.same(peer.openUploads().filter(u => u.key.includes(running!.name)), [], 'no dangling multipart upload')
  t.same(readdirSync(join(dir, '.pgkeep', 'uploads')), [], 'the journal is empty')
  const bucket = peer.storage({ stateDir: freshDir(t), prefix: 'nightly' })
  t.equal(await bucket.stat(running!.name), undefined, 'no object of the killed job in the bucket')
  t.equal(await bucket.stat(`${running!.name}.manifest.json`), undefined, 'nor a manifest')
})

t.test('encrypted in the bucket: download as stored opens with stock age; --decrypt, validate and restore use the identity', async t => {
  const dir = freshDir(t)
  const { identity, recipient } = newAgeKey(dir, 'key')
  const env = s3Env(dir, {
    PGKEEP_STORAGE: 's3://pgkeep-cli/encrypted',
    PGKEEP_AGE_RECIPIENTS: recipient,
    PGKEEP_AGE_IDENTITY_FILE: identity,
  })
  const created = await runCli(['create', '--json'], env)
  t.equal(created.code, 0, created.stderr)
  const backup = JSON.parse(created.stdout) as Backup
  t.match(backup.name, /\.dump\.zst\.age$/)
  const asStored = await runCli(['download', backup.id, '-o', join(dir, 'stored.age'), '--json'], env)
  t.equal(JSON.parse(asStored.stdout).sha256, backup.sha256)
  const decrypted = await runCli(['download', backup.id, '--decrypt', '-o', join(dir, 'plain.dump.zst'), '--json'], env)
  t.equal(decrypted.code, 0, decrypted.stderr)
  t.ok(readFileSync(join(dir, 'plain.dump.zst')).equals(execFileSync('age', ['-d', '-i', identity, join(dir, 'stored.age')], { maxBuffer: 1024 * 1024 * 1024 })), '--decrypt gives what age -d gives')
  const validated = await runCli(['validate', backup.id, '--json'], env)
  t.match(JSON.parse(validated.stdout), { verification: { ok: true, method: 'sha256+pg_restore' } })
  const restored = await runCli(['restore', backup.id, '--database', 'cli_s3_encrypted', '--create'], env)
  t.equal(restored.code, 0, restored.stderr)
  t.equal(await databaseFingerprint(cluster, 'cli_s3_encrypted'), source)
})
