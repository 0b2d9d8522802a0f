import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Target } from '../../../server/config.ts'
import { passfileRoot, prepareChildEnv, removeOrphanedPassfiles } from '../../../server/engine/pg/passfile.ts'
import { processStartTicks } from '../../../server/engine/store/file-lock.ts'
import { deadPid, liveProcess, tempDir } from '../store/fixtures.ts'

const target: Target = { name: 't', host: 'db.example', port: 5432, user: 'app:user', database: 'app', password: 'pa:ss\\word' }

const backupsDir = (t: { teardown: (fn: () => void) => void }): string => tempDir(t, 'pgkeep-passfile-')

t.test('a job\'s passfile lives in a private directory under .pgkeep/run, named for its owner, and goes with dispose', async t => {
  const dir = backupsDir(t)
  const child = await prepareChildEnv(target, 'pgkeep-x', dir)
  const passfile = child.env.PGPASSFILE as string
  t.equal(join(passfile, '..', '..'), passfileRoot(dir))
  t.match(passfile, new RegExp(`/\\.pgkeep/run/${process.pid}-${processStartTicks(process.pid)}-[^/]+/pgpass$`))
  t.equal(statSync(join(passfile, '..')).mode & 0o777, 0o700)
  t.equal(statSync(passfile).mode & 0o777, 0o600)
  t.equal(readFileSync(passfile, 'utf8'), '*:*:*:app\\:user:pa\\:ss\\\\word\n')
  await child.dispose()
  t.notOk(existsSync(join(passfile, '..')), 'removed when the job ends')
})

t.test('start-up recovery removes the passfiles of dead owners and keeps those of live ones', async t => {
  const dir = backupsDir(t)
  const root = passfileRoot(dir)
  const ours = await prepareChildEnv(target, 'pgkeep-live', dir)
  t.teardown(ours.dispose)
  const other = liveProcess(t)
  const othersDir = `${other.pid}-${processStartTicks(other.pid as number)}-abc123`
  const deadDir = `${await deadPid()}-12345-def456`
  // the live pid of another process, but a start time it never had: a previous owner whose pid was reused
  const reusedDir = `${other.pid}-1-ghi789`
  for (const d of [othersDir, deadDir, reusedDir]) {
    mkdirSync(join(root, d), { recursive: true, mode: 0o700 })
    writeFileSync(join(root, d, 'pgpass'), '*:*:*:u:secret\n', { mode: 0o600 })
  }
  const removed = await removeOrphanedPassfiles(dir)
  t.same(removed.sort(), [deadDir, reusedDir].sort())
  t.same(readdirSync(root).sort(), [othersDir, ours.env.PGPASSFILE!.split('/').at(-2)].sort(), 'live owners keep theirs')
  t.same(await removeOrphanedPassfiles(backupsDir(t)), [], 'a backups dir without a run dir is fine')
})
