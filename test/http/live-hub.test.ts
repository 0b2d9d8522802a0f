import t, { type Test } from 'tap'
import type { BackupWithProgress, Progress } from '../../schemas/backup.ts'
import type { ServerEvent } from '../../schemas/events.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import { BackupEvents } from '../../server/engine/backup-events.ts'
import * as ws from 'ws'
import { LiveHub, textFrame, type LiveClient } from '../../server/http/live-hub.ts'
import { makeBackup } from '../engine/store/fixtures.ts'

/** A BackupService as the hub sees it: the engine's typed events and its lists of active jobs. */
class Source extends BackupEvents {
  active (): BackupWithProgress[] { return [] }
  activeRestores (): RestoreState[] { return [] }
}

class Viewer implements LiveClient {
  readonly readyState = 1
  bufferedAmount = 0
  terminated = false
  readonly received: ServerEvent[] = []
  #waiters: Array<() => void> = []
  send (data: Buffer): void {
    this.received.push(JSON.parse(data.toString()))
    for (const w of this.#waiters.splice(0)) w()
  }

  /** resolves once the check holds, re-checked on every message */
  async until (check: () => boolean): Promise<void> {
    // the hub's flush timers are unref'd (they must not hold a server open): hold the loop while waiting
    const keepAlive = setInterval(() => {}, 1000)
    try {
      while (!check()) await new Promise<void>(resolve => this.#waiters.push(resolve))
    } finally {
      clearInterval(keepAlive)
    }
  }

  terminate (): void { this.terminated = true }
  ofType<K extends ServerEvent['type']> (type: K): Extract<ServerEvent, { type: K }>[] {
    return this.received.filter(e => e.type === type) as Extract<ServerEvent, { type: K }>[]
  }
}

function setup (t: Test): { source: Source, viewer: Viewer, hub: LiveHub } {
  const source = new Source()
  const hub = new LiveHub(source, { progressIntervalMs: 50 })
  t.teardown(() => hub.close())
  const viewer = new Viewer()
  hub.add(viewer, 'admin')
  return { source, viewer, hub }
}

t.test('a burst of progress reaches viewers as the first and the newest, and the last one before the final status', async t => {
  const { source, viewer } = setup(t)
  const backup = makeBackup({ status: 'running' })
  const progress = (bytes: number): Progress => ({ backupId: backup.id, bytes, rate: 0, tablesDone: 0, tablesTotal: 1 })
  for (let i = 1; i <= 100; i++) source.emit('progress', progress(i))
  t.same(viewer.ofType('progress').map(p => p.bytes), [1], 'the first goes at once, the rest wait')
  await viewer.until(() => viewer.ofType('progress').length === 2)
  t.same(viewer.ofType('progress').map(p => p.bytes), [1, 100], 'only the newest of the waiting ones follows')
  source.emit('progress', progress(200))
  source.emit('status', { ...backup, status: 'completed' })
  t.same(viewer.received.slice(-2).map(e => e.type), ['progress', 'status'], 'the last progress is flushed before the status')
  t.equal(viewer.ofType('progress').at(-1)?.bytes, 200)
})

t.test('running restore states are throttled like progress; an ending state flushes the last one and goes at once', async t => {
  const { source, viewer } = setup(t)
  const state = (bytes: number, status: RestoreState['status'] = 'running'): RestoreState => ({
    restoreId: '01936f6e-0000-7000-8000-000000000001', backupId: '01936f6e-0000-7000-8000-000000000002', database: 'db', status,
    progress: { bytes, totalBytes: 1000, percent: bytes / 10, rate: 0 }, at: new Date().toISOString(),
  })
  for (let i = 1; i <= 50; i++) source.emit('restore', state(i))
  t.equal(viewer.ofType('restore').length, 1, 'one state of the burst now')
  source.emit('restore', state(1000, 'completed'))
  t.same(viewer.ofType('restore').map(s => [s.status, s.progress?.bytes]), [['running', 1], ['running', 50], ['completed', 1000]])
})

t.test('a viewer that cannot keep up is dropped, the others keep receiving', async t => {
  const { source, viewer, hub } = setup(t)
  const slow = new Viewer()
  hub.add(slow, 'viewer')
  slow.bufferedAmount = 10 * 1024 * 1024
  source.emit('deleted', { backupId: '01936f6e-0000-7000-8000-000000000003' })
  t.ok(slow.terminated, 'the slow viewer is terminated')
  t.equal(viewer.ofType('deleted').length, 1)
  source.emit('deleted', { backupId: '01936f6e-0000-7000-8000-000000000004' })
  t.equal(viewer.ofType('deleted').length, 2)
})

t.test('a viewer that is behind is coalesced, not dropped: no progress while behind, the newest once it catches up, the last one and the status at the end', async t => {
  const { source, viewer: fast, hub } = setup(t)
  const slow = new Viewer()
  hub.add(slow, 'viewer')
  const backup = makeBackup({ status: 'running' })
  const progress = (bytes: number): Progress => ({ backupId: backup.id, bytes, rate: 0, tablesDone: 0, tablesTotal: 1 })
  // behind (its socket has not taken the last 200 KB) but still reading: far from the 1 MB that drops a viewer
  slow.bufferedAmount = 200 * 1024
  source.emit('progress', progress(1))
  await fast.until(() => fast.ofType('progress').length === 1)
  source.emit('log', { backupId: backup.id, line: 'pg_dump: dumping contents of table "public.orders"', at: new Date().toISOString() })
  for (let i = 2; i <= 50; i++) source.emit('progress', progress(i))
  await fast.until(() => fast.ofType('progress').at(-1)?.bytes === 50)
  t.same(slow.ofType('progress'), [], 'no progress while behind')
  t.equal(slow.ofType('log').length, 1, 'other events still go')

  slow.bufferedAmount = 0
  source.emit('progress', progress(60))
  await slow.until(() => slow.ofType('progress').length === 1)
  t.same(slow.ofType('progress').map(p => p.bytes), [60], 'caught up: the newest, not the backlog')

  slow.bufferedAmount = 200 * 1024
  source.emit('progress', progress(70))
  await fast.until(() => fast.ofType('progress').at(-1)?.bytes === 70)
  source.emit('status', { ...backup, status: 'completed' })
  t.same(slow.received.slice(-2).map(e => e.type === 'progress' ? e.bytes : e.type), [70, 'status'], 'the last progress it held, then the status')
  t.notOk(slow.terminated, 'never dropped')
  t.same(fast.ofType('progress').map(p => p.bytes), [1, 50, 60, 70], 'a viewer keeping up gets the throttled stream as before')
})

t.test('with a thousand viewers, fast and behind, every one gets the final progress and the status that ends the job', async t => {
  const { source, hub } = setup(t)
  const viewers = Array.from({ length: 1000 }, (_, i) => {
    const v = new Viewer()
    hub.add(v, 'viewer')
    v.bufferedAmount = i % 3 === 0 ? 512 * 1024 : 0
    return v
  })
  const backup = makeBackup({ status: 'running' })
  for (let i = 1; i <= 20; i++) source.emit('progress', { backupId: backup.id, bytes: i, rate: 0, tablesDone: 0, tablesTotal: 1 })
  source.emit('status', { ...backup, status: 'completed' })
  for (const v of viewers) {
    const last = v.received.slice(-2)
    if (v.terminated || last[0]?.type !== 'progress' || last[0].bytes !== 20 || last[1]?.type !== 'status') {
      t.fail(`a viewer missed the end: ${JSON.stringify(last)}`)
      return
    }
  }
  t.pass('all 1000 got the last progress, then the status')
})

t.test('what a viewer gets in one turn of the event loop leaves in one write: corked at the first event, uncorked at the end of the turn', async t => {
  const { source, hub } = setup(t)
  const calls: string[] = []
  const viewer = Object.assign(new Viewer(), { cork: () => { calls.push('cork') }, uncork: () => { calls.push('uncork') } })
  hub.add(viewer, 'viewer')
  await new Promise(resolve => setImmediate(resolve))
  calls.length = 0
  const backupId = '01936f6e-0000-7000-8000-000000000010'
  for (let i = 0; i < 40; i++) source.emit('log', { backupId, line: `pg_dump: line ${i}`, at: new Date().toISOString() })
  t.same(calls, ['cork'], 'corked once for the burst')
  t.equal(viewer.ofType('log').length, 40, 'every event handed to the socket, in order')
  await new Promise(resolve => setImmediate(resolve))
  t.same(calls, ['cork', 'uncork'], 'uncorked once, at the end of the turn')
})

t.test('an event is framed once for every viewer that takes frames, and the frame is one ws reads back as the event, at every length', async t => {
  const { source, hub } = setup(t)
  const frames: Buffer[][] = [[], [], []]
  for (const got of frames) hub.add(Object.assign(new Viewer(), { write: (frame: Buffer) => { got.push(frame) } }), 'viewer')
  const backupId = '01936f6e-0000-7000-8000-000000000011'
  // payloads under 126 bytes, under 64 KiB and above: the three length forms of a frame
  const lines = ['x', 'y'.repeat(1000), 'z'.repeat(70_000)]
  for (const line of lines) source.emit('log', { backupId, line, at: '2026-11-30T12:00:00.000Z' })
  const logs = (got: Buffer[]): Buffer[] => got.slice(1) // the first is the snapshot
  t.equal(logs(frames[0]).length, 3)
  t.ok(logs(frames[0]).every((f, i) => f === logs(frames[1])[i] && f === logs(frames[2])[i]), 'the very same frame went to each viewer')

  const read: string[] = []
  // ws's own frame parser, as a browser's or the CLI's client runs it (exported, though not in its typings)
  const { Receiver } = ws as unknown as { Receiver: new (o: { isServer: boolean }) => NodeJS.WritableStream & NodeJS.EventEmitter }
  const receiver = new Receiver({ isServer: false })
  receiver.on('message', (data: Buffer) => read.push(data.toString()))
  for (const f of logs(frames[0])) receiver.write(f)
  t.same(read.map(m => JSON.parse(m).line), lines, 'ws reads each frame back as the event')
  t.same(textFrame(Buffer.from('')), Buffer.from([0x81, 0]), 'an empty text frame')
})

t.test('progress slows with a large audience: the configured rate up to 400 viewers, a second apart at 1,000', async t => {
  const hub = new LiveHub(new Source())
  t.teardown(() => hub.close())
  const add = (n: number): void => { for (let i = 0; i < n; i++) hub.add(new Viewer(), 'viewer') }
  add(200)
  t.equal(hub.progressGapMs, 200, '200 viewers: 5 a second, as configured')
  add(200)
  t.equal(hub.progressGapMs, 200, '400 viewers: still')
  add(300)
  t.equal(hub.progressGapMs, 600, '700 viewers: halfway, 600 ms')
  add(300)
  t.equal(hub.progressGapMs, 1000, '1,000 viewers: 1 a second')
})

t.test('restores reach admins only, in the snapshot and live, and a changed role applies to the next event', async t => {
  const { source, viewer: admin, hub } = setup(t)
  const running: RestoreState = {
    restoreId: '01936f6e-0000-7000-8000-000000000005', backupId: '01936f6e-0000-7000-8000-000000000006', database: 'secret_db', status: 'running', at: new Date().toISOString(),
  }
  source.activeRestores = () => [running]
  const viewer = new Viewer()
  hub.add(viewer, 'viewer')
  const operator = new Viewer()
  hub.add(operator, 'operator')
  const lateAdmin = new Viewer()
  hub.add(lateAdmin, 'admin')
  t.same(viewer.ofType('snapshot')[0], { type: 'snapshot', jobs: [] }, 'a viewer\'s snapshot has no restores')
  t.same(operator.ofType('snapshot')[0], { type: 'snapshot', jobs: [] }, 'nor an operator\'s')
  t.equal(lateAdmin.ofType('snapshot')[0]?.restores?.[0]?.database, 'secret_db', 'an admin\'s has them')

  source.emit('restore', { ...running, status: 'failed', error: { code: 'PG_RESTORE_FAILED', message: 'role "x" does not exist' } })
  source.emit('deleted', { backupId: running.backupId })
  t.equal(admin.ofType('restore').length, 1)
  t.same(viewer.received.map(e => e.type), ['snapshot', 'deleted'], 'the viewer got the deletion but not the restore')
  t.same(operator.received.map(e => e.type), ['snapshot', 'deleted'])

  hub.setRole(admin, 'viewer')
  hub.setRole(viewer, 'admin')
  source.emit('restore', { ...running, restoreId: '01936f6e-0000-7000-8000-000000000007', status: 'completed' })
  t.equal(admin.ofType('restore').length, 1, 'demoted: no more restores')
  t.equal(viewer.ofType('restore').length, 1, 'promoted: restores from now on')
})
