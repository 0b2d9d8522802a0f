import { once } from 'node:events'
import { existsSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { processStartTicks, withFileLock } from '../../../server/engine/store/file-lock.ts'
import { Registry } from '../../../server/engine/store/registry.ts'
import { deadPid, enginePath, liveProcess, makeBackup, spawnScript, tempDir, waitForLine } from './fixtures.ts'

t.test('two processes doing 50 registry updates each concurrently lose no update', async t => {
  const dir = tempDir(t)
  const registry = await Registry.open(dir)
  const counter = makeBackup({ sizeBytes: 0 })
  await registry.put(counter)
  const script = join(dir, 'increment.mts')
  writeFileSync(script, `
    import { Registry } from ${JSON.stringify(enginePath('registry.ts'))}
    const [dir, id] = process.argv.slice(2)
    const registry = await Registry.open(dir)
    console.log('ready')
    await new Promise(resolve => process.stdin.once('data', resolve))
    for (let i = 0; i < 50; i++) {
      await registry.update(all => {
        const b = all.get(id)
        all.set(id, { ...b, sizeBytes: b.sizeBytes + 1 })
      })
    }
    console.log('done')
    process.exit(0)
  `)
  const children = [spawnScript(script, [dir, counter.id]), spawnScript(script, [dir, counter.id])]
  t.teardown(() => { for (const c of children) c.kill('SIGKILL') })
  await Promise.all(children.map(c => waitForLine(c, /^ready$/)))
  // Released together so the two writers really contend for the lock.
  for (const c of children) c.stdin?.write('go\n')
  const codes = await Promise.all(children.map(async c => (await once(c, 'exit'))[0]))
  t.same(codes, [0, 0])
  await registry.reload()
  t.equal(registry.get(counter.id)?.sizeBytes, 100)
})

t.test('a live lock holder in another process makes the other wait, then lets it in', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  const script = join(dir, 'hold.mts')
  writeFileSync(script, `
    import { withFileLock } from ${JSON.stringify(enginePath('file-lock.ts'))}
    await withFileLock(process.argv[2], async () => {
      console.log('locked')
      await new Promise(resolve => process.stdin.once('data', resolve))
    })
    process.exit(0)
  `)
  const holder = spawnScript(script, [lockPath])
  t.teardown(() => { holder.kill('SIGKILL') })
  await waitForLine(holder, /^locked$/)

  await t.rejects(withFileLock(lockPath, async () => {}, { timeoutMs: 200 }),
    { code: 'INTERNAL', message: new RegExp(`registry is locked by pid ${holder.pid}`) },
    'a short timeout gives up naming the holder')

  let released = false
  const entered = withFileLock(lockPath, async () => released, { timeoutMs: 20000 })
  released = true
  holder.stdin?.write('go\n')
  t.equal(await entered, true, 'entered only after the holder released')
  t.notOk(existsSync(lockPath), 'the lock file is gone after release')
})

t.test('a stale lock holding a dead pid is taken over', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  writeFileSync(lockPath, `${await deadPid()}\n`)
  t.equal(await withFileLock(lockPath, async () => 'mine', { timeoutMs: 2000 }), 'mine')
  t.notOk(existsSync(lockPath))
})

t.test('a stale lock is still taken over when a process died while breaking it', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  writeFileSync(lockPath, `${await deadPid()}\n`)
  writeFileSync(`${lockPath}.break`, '')
  const old = new Date(Date.now() - 60_000)
  utimesSync(`${lockPath}.break`, old, old)
  t.equal(await withFileLock(lockPath, async () => 'mine', { timeoutMs: 5000 }), 'mine')
  t.notOk(existsSync(`${lockPath}.break`))
})

t.test('a lock whose pid was reused by an unrelated process is taken over', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  const other = liveProcess(t)
  const ticks = processStartTicks(other.pid as number)
  if (ticks === undefined) { t.pass('no /proc start times on this platform: nothing to compare'); return }
  writeFileSync(lockPath, `${other.pid} ${ticks - 1} 0123abcd\n`)
  t.equal(await withFileLock(lockPath, async () => 'mine', { timeoutMs: 2000 }), 'mine')
})

t.test('a lock naming our own pid from a previous life (pid 1 in a container) is taken over', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  writeFileSync(lockPath, `${process.pid} ${processStartTicks(process.pid) ?? '-'} deadbeef\n`)
  t.equal(await withFileLock(lockPath, async () => 'mine', { timeoutMs: 2000 }), 'mine')
})

t.test('a garbage lock file is stale only once it is a few seconds old', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  writeFileSync(lockPath, '')
  await t.rejects(withFileLock(lockPath, async () => {}, { timeoutMs: 150 }), { code: 'INTERNAL' },
    'a fresh empty lock may be a holder that has not written its pid yet')
  const old = new Date(Date.now() - 60_000)
  utimesSync(lockPath, old, old)
  t.equal(await withFileLock(lockPath, async () => 'mine', { timeoutMs: 2000 }), 'mine')
})

t.test('callers in one process are serialized and the lock is released when fn throws', async t => {
  const dir = tempDir(t)
  const lockPath = join(dir, 'registry.lock')
  let inside = 0
  let maxInside = 0
  await Promise.all(Array.from({ length: 10 }, async () => withFileLock(lockPath, async () => {
    inside++
    maxInside = Math.max(maxInside, inside)
    await new Promise(resolve => setImmediate(resolve))
    inside--
  })))
  t.equal(maxInside, 1)
  await t.rejects(withFileLock(lockPath, async () => { throw new Error('boom') }), /boom/)
  t.notOk(existsSync(lockPath))
  t.equal(await withFileLock(lockPath, async () => 'again', { timeoutMs: 500 }), 'again')
})

// Two holders in one process (two registry views): a release used to stop listing the lock as its own before
// removing the file, so the other waiter judged it a previous life's, broke it and took the lock, and the
// release's unlink then removed that fresh lock, letting a third acquire beside it.
t.test('in one process, holders of one lock never overlap, however their releases and waits interleave', async t => {
  const lockPath = join(tempDir(t), 'one.lock')
  let inside = 0
  let overlaps = 0
  const chain = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      await withFileLock(lockPath, async () => {
        if (++inside > 1) overlaps++
        await new Promise(resolve => setImmediate(resolve))
        inside--
      })
    }
  }
  await Promise.all([chain(150), chain(150), chain(150)])
  t.equal(overlaps, 0, 'never two holders at once')
  t.notOk(existsSync(lockPath), 'released')
})
