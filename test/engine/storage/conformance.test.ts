// One suite, both storages: whatever the engine may rely on holds for the local directory and for S3 alike.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { DEFAULT_PART_BYTES } from '../../../server/engine/storage/s3-multipart-writer.ts'
import type { Storage } from '../../../server/engine/storage/storage.ts'
import { startS3Peer, type S3Peer } from '../../helpers/s3-peer.ts'
import { bytes, feed, MiB, put, readAll, sha } from './storage-fixtures.ts'

const PART = DEFAULT_PART_BYTES

interface Subject {
  storage: Storage
  /** a new Storage over the same place and state, as a restarted process would open it */
  reopen: () => Storage
  peer?: S3Peer
}

const subjects: Record<string, (t: Test) => Promise<Subject>> = {
  local: async t => {
    const dir = t.testdir()
    return { storage: new LocalStorage(dir), reopen: () => new LocalStorage(dir) }
  },
  s3: async t => {
    const peer = await startS3Peer(t)
    const stateDir = join(t.testdir(), '.pgkeep', 'uploads')
    const open = (): Storage => peer.storage({ prefix: 'team/backups', stateDir })
    return { storage: open(), reopen: open, peer }
  },
}

for (const [kind, make] of Object.entries(subjects)) {
  t.test(`${kind} storage`, async t => {
    const { storage, reopen, peer } = await make(t)

    t.test('what is committed reads back byte for byte: empty, one byte, just over a part, several parts in flight', async t => {
      for (const size of [0, 1, PART + 1, 5 * PART + 12345]) {
        const data = bytes(size)
        await put(storage, `roundtrip-${size}`, data)
        t.equal(sha(await readAll(await storage.read(`roundtrip-${size}`))), sha(data), `${size} bytes`)
        t.same(await storage.stat(`roundtrip-${size}`), { key: `roundtrip-${size}`, sizeBytes: size })
      }
      t.same(await storage.listUnfinished(), [], 'no write left unfinished')
      if (peer) t.same(peer.openUploads(), [], 'no multipart upload left open')
    })

    t.test('a range read returns exactly the inclusive byte range, also across a part boundary', async t => {
      const data = bytes(PART + 2 * MiB)
      await put(storage, 'ranges', data)
      for (const [start, end] of [[0, 0], [10, 99], [PART - 5, PART + 5], [data.length - 1, data.length - 1]]) {
        const got = await readAll(await storage.read('ranges', { start, end }))
        t.ok(got.equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`)
      }
    })

    t.test('stat, list and delete see committed objects only, and deleting a missing key is fine', async t => {
      t.equal(await storage.stat('listed-a'), undefined)
      await put(storage, 'listed-a', bytes(10))
      await storage.writeText('listed-a.manifest.json', '{"a":1}')
      await put(storage, 'listed-b', bytes(20))
      const unfinished = await storage.createWriter('listed-c')
      await feed(unfinished, bytes(5))
      t.same(await storage.list('listed-'), [
        { key: 'listed-a', sizeBytes: 10 },
        { key: 'listed-a.manifest.json', sizeBytes: 7 },
        { key: 'listed-b', sizeBytes: 20 },
      ])
      t.ok((await storage.list()).some(o => o.key === 'listed-b'), 'listing without a prefix finds it too')
      t.notOk((await storage.list()).some(o => o.key.startsWith('.')), 'hidden state is not listed')
      await storage.delete('listed-a')
      t.equal(await storage.stat('listed-a'), undefined)
      await storage.delete('listed-a')
      await storage.delete('never-there')
      t.same((await storage.list('listed-')).map(o => o.key), ['listed-a.manifest.json', 'listed-b'])
      await unfinished.abort()
    })

    t.test('writeText replaces a text object whole and readText returns the latest', async t => {
      await storage.writeText('m.manifest.json', '{"v":1}')
      await storage.writeText('m.manifest.json', '{"v":2,"longer":true}')
      t.equal(await storage.readText('m.manifest.json'), '{"v":2,"longer":true}')
    })

    t.test('a commit whose size does not match fails INTEGRITY_FAILED and leaves nothing behind', async t => {
      for (const size of [100, PART + 100]) {
        const w = await storage.createWriter(`mismatch-${size}`)
        await feed(w, bytes(size))
        await t.rejects(w.commit({ sizeBytes: size + 1 }), { code: 'INTEGRITY_FAILED' }, `${size} bytes`)
        await w.abort()
        t.equal(await storage.stat(`mismatch-${size}`), undefined)
      }
      t.same(await storage.listUnfinished(), [])
      if (peer) t.same(peer.openUploads(), [])
    })

    t.test('abort drops the write: nothing visible, nothing unfinished, and a second abort is harmless', async t => {
      const w = await storage.createWriter('aborted')
      await feed(w, bytes(2 * PART + 1))
      await w.abort()
      await w.abort()
      t.equal(await storage.stat('aborted'), undefined)
      t.same(await storage.listUnfinished(), [])
      if (peer) t.same(peer.openUploads(), [])
    })

    t.test('writing a key that exists fails CONFLICT and keeps the existing object', async t => {
      const first = bytes(1000)
      await put(storage, 'taken', first)
      for (const size of [10, PART + 10]) {
        const w = await storage.createWriter('taken')
        await feed(w, bytes(size))
        await t.rejects(w.commit({ sizeBytes: size }), { code: 'CONFLICT' }, `${size} bytes`)
        await w.abort()
      }
      t.equal(sha(await readAll(await storage.read('taken'))), sha(first))
      t.same(await storage.listUnfinished(), [])
      if (peer) t.same(peer.openUploads(), [])
    })

    t.test('a write abandoned by a crash is listed as unfinished after a restart, and abortUnfinished clears it', async t => {
      const w = await storage.createWriter('crashed')
      await feed(w, bytes(PART + 1))
      // the process "dies": the writer is never committed nor aborted; a new process opens the storage
      const restarted = reopen()
      const left = await restarted.listUnfinished()
      t.same(left.map(u => u.key), ['crashed'])
      if (peer) t.same(peer.openUploads().map(u => u.key), ['team/backups/crashed'])
      for (const u of left) await restarted.abortUnfinished(u)
      await restarted.abortUnfinished(left[0])
      t.same(await restarted.listUnfinished(), [])
      t.equal(await restarted.stat('crashed'), undefined)
      if (peer) t.same(peer.openUploads(), [], 'the store holds no open upload')
    })

    t.test('reading a missing key fails NOT_FOUND', async t => {
      await t.rejects(storage.read('missing'), { code: 'NOT_FOUND' })
      await t.rejects(storage.read('missing', { start: 0, end: 9 }), { code: 'NOT_FOUND' })
      await t.rejects(storage.readText('missing.manifest.json'), { code: 'NOT_FOUND' })
    })

    t.test('probe succeeds on a usable storage and leaves no probe object', async t => {
      await storage.probe()
      t.notOk((await storage.list()).some(o => o.key.includes('probe')))
    })
  })
}
