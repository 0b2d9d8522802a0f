import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, statSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Compile } from 'typebox/compile'
import { Backup, type ListResult, type CleanupResult } from '../../schemas/backup.ts'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, databaseFingerprint } from '../helpers/sample-db.ts'
import { findPgTool } from '../../server/engine/pg/tools.ts'
import { BIN, memoryIO, runCli, type CliResult } from './cli-runner.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_local_shop', { rows: 2000 })
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-local-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const env = { DATABASE_URL: cluster.url('cli_local_shop'), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir }
const checkBackup = Compile(Backup)

/** In-process run of one command against the same backups dir and cluster. */
async function cli (args: string[]): Promise<{ code: number, out: string, err: string }> {
  const io = memoryIO(env)
  const code = await dispatch(args, io)
  return { code, out: io.out(), err: io.err() }
}

let first: Backup

t.test('create --json prints only the backup record, valid against the Backup schema, and its file exists', async t => {
  const r = await runCli(['create', '--json'], env)
  t.equal(r.code, 0, r.stderr)
  const record = JSON.parse(r.stdout) as Backup
  t.ok(checkBackup.Check(record), 'matches schemas/backup.ts Backup')
  t.equal(record.status, 'completed')
  t.equal(record.target, 'default')
  t.equal(record.database, 'cli_local_shop')
  t.ok(statSync(join(dir, record.name)).size > 0, 'the backup file is on disk')
  t.ok(existsSync(join(dir, `${record.name}.manifest.json`)), 'a manifest sits next to it')
  t.notMatch(r.stderr, /\x1b/, 'no terminal control codes when stderr is not a TTY')
  first = record
})

t.test('list shows the backup in a table and as JSON', async t => {
  const human = await cli(['list'])
  t.equal(human.code, 0)
  t.match(human.out, /^ID +NAME +TARGET +STATUS +SIZE +CREATED +DURATION +DRILL$/m)
  t.match(human.out, first.name)
  const json = await cli(['list', '--json', '--status', 'completed'])
  const result = JSON.parse(json.out) as ListResult
  t.equal(result.total, 1)
  t.equal(result.items[0].id, first.id)
  const none = await cli(['list', '--status', 'failed'])
  t.equal(none.out, 'no backups\n')
})

t.test('info and status show one backup in detail; an unknown id exits 1 with NOT_FOUND', async t => {
  for (const name of ['info', 'status']) {
    const r = await cli([name, first.id])
    t.equal(r.code, 0)
    t.match(r.out, /^Status: +completed$/m)
    t.match(r.out, new RegExp(`^SHA-256: +${first.sha256}$`, 'm'))
  }
  const json = await cli(['info', '--json', first.id])
  t.equal((JSON.parse(json.out) as { backup: Backup }).backup.id, first.id)
  const missing = await cli(['info', '01936f1e-8a2b-7c3d-8e4f-0123456789ab'])
  t.equal(missing.code, 1)
  t.match(missing.err, /^pgkeep: NOT_FOUND: /)
})

t.test('validate passes an intact backup and exits 3 once a byte of the file is changed', async t => {
  const ok = await cli(['validate', first.id])
  t.equal(ok.code, 0, ok.err)
  t.match(ok.out, /^ok {2}/)
  const file = join(dir, first.name)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.from('XXXX'), 0, 4, Math.floor(statSync(file).size / 2))
  closeSync(fd)
  const bad = await runCli(['validate', first.id], env)
  t.equal(bad.code, 3)
  t.match(bad.stderr, /^pgkeep: INTEGRITY_FAILED: /)
  const info = JSON.parse((await cli(['info', '--json', first.id])).out) as { backup: Backup }
  t.equal(info.backup.verification?.ok, false, 'the failed check is stored in the record')
})

t.test('pin protects a backup from cleanup; --off removes the pin', async t => {
  const pinned = await cli(['pin', first.id])
  t.equal(pinned.code, 0)
  t.match(pinned.out, /^pinned /)
  const unpinned = await cli(['pin', '--off', first.id])
  t.match(unpinned.out, /^unpinned /)
})

t.test('cleanup --dry-run lists exactly what the real run then deletes', async t => {
  for (let i = 0; i < 3; i++) {
    const r = await cli(['create', '--json', '--compression', 'gzip', '--level', '1', ...(i === 0 ? ['--verbose'] : [])])
    t.equal(r.code, 0, r.err)
    if (i === 0) t.match(r.err, /dumping contents of table "public\.orders"/, '--verbose shows pg_dump\'s log lines on stderr')
  }
  const dry = await cli(['cleanup', '--keep-last', '2', '--dry-run', '--json'])
  t.equal(dry.code, 0, dry.err)
  const planned = JSON.parse(dry.out) as CleanupResult
  t.equal(planned.dryRun, true)
  t.equal(planned.deleted.length, 2, 'four backups, keep the last two')
  for (const b of planned.deleted) t.ok(existsSync(join(dir, b.name)), 'a dry run deletes nothing')
  const human = await cli(['cleanup', '--keep-last', '2', '--dry-run'])
  t.match(human.out, /would delete 2 backups, /)
  t.match(human.out, /^Would delete:\nID +NAME +CREATED +SIZE +WHY$/m)
  t.match(human.out, /full backup #3 of target \(newest first\), 0 days old; kept by none of keepLast 2/, 'each deletion says why')
  t.match(human.out, /^Would keep:\nID +NAME +KEPT BECAUSE$/m)
  t.match(human.out, new RegExp(`^${planned.kept[0].id} .* newest full of target, last 2$`, 'm'), 'each kept backup says which rules keep it')
  t.match(human.out, new RegExp(`^${planned.kept[1].id} .* last 2$`, 'm'))
  t.match(human.out, /\d+(\.\d)? (B|KiB|MiB); 2 kept$/m, 'IEC units')

  const real = await cli(['cleanup', '--keep-last', '2', '--json'])
  const done = JSON.parse(real.out) as CleanupResult
  t.same(done.deleted.map(b => b.id).sort(), planned.deleted.map(b => b.id).sort(), 'same backups as the dry run')
  for (const b of done.deleted) t.notOk(existsSync(join(dir, b.name)), `${b.name} removed`)
  const left = JSON.parse((await cli(['list', '--json'])).out) as ListResult
  t.equal(left.total, 2)
})

t.test('reindex rebuilds the registry from the manifests', async t => {
  rmSync(join(dir, 'registry.json'), { force: true })
  const r = await cli(['reindex'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /registry rebuilt: 2 backups/)
})

t.test('download copies a local backup whole and checksum-verified', async t => {
  const newest = (JSON.parse((await cli(['list', '--json'])).out) as ListResult).items[0]
  const file = join(dir, 'copies', 'copy.dump')
  mkdirSync(join(dir, 'copies'))
  const r = await cli(['download', newest.id, '-o', file])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /sha256 ok/)
  t.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), newest.sha256)
  t.notOk(existsSync(`${file}.partial`))
})

t.test('restore --create brings a backup back into a new database with the same content', async t => {
  const newest = (JSON.parse((await cli(['list', '--json'])).out) as ListResult).items[0]
  const r = await cli(['restore', newest.id, '--database', 'cli_local_copy', '--create'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /^restored \S+ into cli_local_copy in /)
  t.equal(await databaseFingerprint(cluster, 'cli_local_copy'), await databaseFingerprint(cluster, 'cli_local_shop'))
})

t.test('every state change made through the local CLI has one audit entry: the OS user, door cli, what and on which backup', async t => {
  const lines = readFileSync(join(dir, '.pgkeep', 'audit.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  const who = `cli:${userInfo().username}`
  for (const l of lines) t.match(l, { user: who, door: 'cli', ip: 'local', time: String }, `${String(l.action)} names who and where`)
  const count = (action: string, outcome = 'ok'): number => lines.filter(l => l.action === action && l.outcome === outcome).length
  t.equal(count('backup.create'), 4, 'one per create')
  t.ok(lines.filter(l => l.action === 'backup.create').every(l => typeof l.backupId === 'string'), 'creates name their backup')
  // a check that finds damage still did its job (its result is stored in the record), as over HTTP
  t.equal(count('backup.validate'), 2, 'the intact check and the one that found the changed byte')
  t.equal(count('backup.pin'), 2, 'pin and unpin')
  t.ok(lines.filter(l => l.action === 'backup.pin').every(l => l.backupId === first.id))
  t.equal(count('registry.reindex'), 1)
  t.equal(count('backup.download'), 1)
  t.equal(count('backup.restore'), 1)

  const cleanups = lines.filter(l => l.action === 'backup.cleanup')
  t.same(cleanups.map(l => l.dryRun), [true, true, false], 'two dry runs, then the real one')
  t.notOk(cleanups[0].deleted, 'a dry run deleted nothing')
  const deleted = cleanups[2].deleted as { id: string, name: string, reason: string }[]
  t.equal(deleted.length, 2, 'the real run names both backups it deleted')
  for (const d of deleted) {
    t.match(d, { id: String, name: String })
    t.match(d.reason, /^full backup #\d of target \(newest first\), \d+ days old; kept by none of keepLast 2$/)
  }
})

t.test('restore into a database that holds objects is refused (exit 2) unless --clean replaces it or --merge adds to it', async t => {
  const newest = (JSON.parse((await cli(['list', '--json'])).out) as ListResult).items[0]
  await cluster.createDatabase('cli_local_busy')
  await cluster.psql('CREATE TABLE mine (x int)', 'cli_local_busy')
  const refused = await cli(['restore', newest.id, '--database', 'cli_local_busy'])
  t.equal(refused.code, 2, refused.err)
  t.match(refused.err, /^pgkeep: TARGET_NOT_EMPTY: database "cli_local_busy" on target "default" is not empty \(table mine\); restore with clean to replace it, or merge/)
  const both = await cli(['restore', newest.id, '--database', 'cli_local_busy', '--clean', '--merge'])
  t.equal(both.code, 2)
  t.match(both.err, /--clean and --merge exclude each other/)
  const replaced = await cli(['restore', newest.id, '--database', 'cli_local_busy', '--clean'])
  t.equal(replaced.code, 0, replaced.err)
  t.match(replaced.out, /^restored \S+ into cli_local_busy \(the database that was there is replaced and dropped\) in /)
  t.equal(await databaseFingerprint(cluster, 'cli_local_busy'), await databaseFingerprint(cluster, 'cli_local_shop'), 'the backup\'s content, and no table mine')
})

/** Runs the CLI in a mount namespace of its own where the backups dir is mounted read-only (as root only). */
function runOnReadOnlyDir (args: string[]): Promise<CliResult> {
  const script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-m', 'sh', '-c', script, 'sh', dir, process.execPath, BIN, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

const canMountReadOnly = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp /tmp']).status === 0

t.test('list and info work on a read-only backups dir', { skip: canMountReadOnly ? false : 'needs root and mount namespaces' }, async t => {
  const probe = await runOnReadOnlyDir(['create'])
  t.not(probe.code, 0, 'the dir really is read-only: a backup cannot be made there')
  const newest = (JSON.parse((await cli(['list', '--json'])).out) as ListResult).items[0]
  const list = await runOnReadOnlyDir(['list', '--json'])
  t.equal(list.code, 0, list.stderr)
  t.ok((JSON.parse(list.stdout) as ListResult).items.some(b => b.id === newest.id), 'the backups are listed')
  const info = await runOnReadOnlyDir(['info', newest.id])
  t.equal(info.code, 0, info.stderr)
  t.match(info.stdout, /^Status: +completed$/m)
})

t.test('directory format without a chosen compression uses the best this pg_dump has; an unsupported choice is refused before anything is recorded', async t => {
  const pgDump = await findPgTool('pg_dump', cluster.binDir)
  if (pgDump.major >= 16) { t.comment(`skipped: pg_dump ${pgDump.version} writes zstd into directories`); return }
  const before = (JSON.parse((await cli(['list', '--json'])).out) as ListResult).total
  const refused = await runCli(['create', '--format', 'directory', '--compression', 'zstd'], env)
  t.equal(refused.code, 2, 'a usage error')
  t.match(refused.stderr, new RegExp(`pg_dump ${pgDump.version.replace('.', '\\.')} cannot write zstd into a directory-format dump`))
  t.equal((JSON.parse((await cli(['list', '--json'])).out) as ListResult).total, before, 'nothing was recorded')

  const human = await runCli(['create', '--format', 'directory'], env)
  t.equal(human.code, 0, human.stderr)
  t.match(human.stderr, /note: compression gzip level 6: the default, zstd, is not available because pg_dump 15/)
  const json = await runCli(['create', '--format', 'directory', '--json'], env)
  t.equal(json.code, 0, json.stderr)
  const record = JSON.parse(json.stdout) as Backup
  t.equal(record.status, 'completed')
  t.equal(record.compression, 'gzip')
  t.equal(record.level, 6)
  t.match(record.notes, [/gzip/])
  t.equal((await cli(['validate', record.id])).code, 0, 'and it validates')
})
