import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { isOwnerAlive, recoverInterrupted } from '../../../server/engine/store/recovery.ts'
import { Registry } from '../../../server/engine/store/registry.ts'
import { deadPid, liveProcess, makeBackup, tempDir } from './fixtures.ts'
import { localStores } from './fixtures.ts'

t.test('a running record whose owner died becomes failed INTERRUPTED and its partial is removed', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  const pid = await deadPid()
  const running = makeBackup({ status: 'running', ownerPid: pid, startedAt: new Date().toISOString() })
  const queued = makeBackup({ status: 'queued', ownerPid: pid })
  const verifying = makeBackup({ status: 'verifying', format: 'directory', name: 'dir-backup', ownerPid: pid })
  const noOwner = makeBackup({ status: 'running' })
  const completed = makeBackup()
  const failed = makeBackup({ status: 'failed', error: { code: 'PG_DUMP_FAILED', message: 'x' } })
  for (const b of [running, queued, verifying, noOwner, completed, failed]) await registry.put(b)
  writeFileSync(join(dir, `${running.name}.partial`), 'half a dump')
  mkdirSync(join(dir, 'dir-backup.partial'))
  writeFileSync(join(dir, 'dir-backup.partial', 'toc.dat'), 'x')
  writeFileSync(join(dir, 'orphan.sql.partial'), 'nobody owns me')
  writeFileSync(join(dir, completed.name), 'finished dump')

  const result = await recoverInterrupted(registry, dir, localStores(dir))
  t.same(result.interrupted.map(b => b.id).sort(), [running.id, queued.id, verifying.id, noOwner.id].sort())
  t.same(result.removedPartials.sort(), [`${running.name}.partial`, 'dir-backup.partial', 'orphan.sql.partial'].sort())
  for (const b of [running, queued, verifying, noOwner]) {
    const now = registry.get(b.id)
    t.equal(now?.status, 'failed')
    t.same(now?.error, { code: 'INTERRUPTED', message: 'pgkeep stopped while this backup was running; the partial file was removed' })
    t.ok(now?.finishedAt)
    t.notOk(now && 'ownerPid' in now, 'no owner any more')
  }
  t.same(registry.get(completed.id), completed, 'completed untouched')
  t.same(registry.get(failed.id), failed, 'failed untouched')
  t.ok(existsSync(join(dir, completed.name)), 'finished files are never touched')
  t.notOk(existsSync(join(dir, 'dir-backup.partial')))

  const again = await recoverInterrupted(registry, dir, localStores(dir))
  t.same(again, { interrupted: [], removedPartials: [], removedPassfiles: [], problems: [] }, 'a second run finds nothing to do')
})

t.test('a running record of a live process is left alone with its partial', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  const other = liveProcess(t)
  const live = makeBackup({ status: 'running', ownerPid: other.pid, startedAt: new Date().toISOString() })
  await registry.put(live)
  writeFileSync(join(dir, `${live.name}.partial`), 'being written')
  const result = await recoverInterrupted(registry, dir, localStores(dir))
  t.same(result, { interrupted: [], removedPartials: [], removedPassfiles: [], problems: [] })
  t.equal(registry.get(live.id)?.status, 'running')
  t.ok(existsSync(join(dir, `${live.name}.partial`)))
})

t.test('a live pid that started after the record was created is a reused pid, not the owner', async t => {
  const other = liveProcess(t)
  const reused = makeBackup({ status: 'running', ownerPid: other.pid, createdAt: new Date(Date.now() - 3600_000).toISOString() })
  const genuine = makeBackup({ status: 'running', ownerPid: other.pid })
  if (!existsSync(`/proc/${other.pid}/stat`)) {
    t.pass('no /proc start times on this platform: a live pid counts as the owner')
    return
  }
  t.equal(isOwnerAlive(reused), false)
  t.equal(isOwnerAlive(genuine), true)
  t.equal(isOwnerAlive({ ...reused, startedAt: new Date().toISOString() }), true, 'queued long ago, started by this live process')
  t.equal(isOwnerAlive({ ...genuine, ownerPid: undefined }), false, 'no owner recorded')
})

t.test('our own pid counts as the owner only for records created in this life of the process', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  // pgkeep in a container is pid 1 after every restart: the previous life's jobs carry our pid.
  const previousLife = makeBackup({ status: 'running', ownerPid: process.pid, createdAt: new Date(performance.timeOrigin - 60_000).toISOString() })
  const thisLife = makeBackup({ status: 'running', ownerPid: process.pid })
  await registry.put(previousLife)
  await registry.put(thisLife)
  writeFileSync(join(dir, `${previousLife.name}.partial`), '')
  writeFileSync(join(dir, `${thisLife.name}.partial`), '')
  const result = await recoverInterrupted(registry, dir, localStores(dir))
  t.same(result.interrupted.map(b => b.id), [previousLife.id])
  t.same(result.removedPartials, [`${previousLife.name}.partial`])
  t.equal(registry.get(thisLife.id)?.status, 'running')
})

t.test('a partial of a live job that another process registered after we opened the registry is kept', async t => {
  const dir = tempDir(t)
  const ours = await Registry.open(dir)
  const theirs = await Registry.open(dir)
  const other = liveProcess(t)
  const job = makeBackup({ status: 'running', ownerPid: other.pid })
  await theirs.put(job)
  writeFileSync(join(dir, `${job.name}.partial`), 'being written by the CLI')
  const result = await recoverInterrupted(ours, dir, localStores(dir))
  t.same(result, { interrupted: [], removedPartials: [], removedPassfiles: [], problems: [] })
  t.ok(existsSync(join(dir, `${job.name}.partial`)))
})
