import t from 'tap'
import { mkdtempSync, readFileSync, statSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../server/audit/audit-log.ts'
import { AuditTrail, DeletionLog } from '../../server/audit/audit-trail.ts'
import { NotFoundError } from '../../server/errors.ts'

t.test('entries are JSONL lines in a 0600 file, paged newest first', async t => {
  const log = new AuditLog(mkdtempSync(join(tmpdir(), 'pgkeep-audit-')))
  t.teardown(() => log.close())
  for (let i = 0; i < 5; i++) await log.append({ user: 'alice', role: 'admin', ip: '127.0.0.1', action: `a${i}`, outcome: 'ok' })
  t.equal(statSync(log.path).mode & 0o777, 0o600)
  const lines = readFileSync(log.path, 'utf8').trim().split('\n')
  t.equal(lines.length, 5)
  t.match(JSON.parse(lines[0]), { time: String, user: 'alice', action: 'a0', outcome: 'ok' })
  const first = await log.page(1, 2)
  t.same(first.items.map(e => e.action), ['a4', 'a3'])
  t.equal(first.total, 5)
  t.same((await log.page(3, 2)).items.map(e => e.action), ['a0'])
})

t.test('concurrent appends never interleave and a torn line is skipped when reading', async t => {
  const log = new AuditLog(mkdtempSync(join(tmpdir(), 'pgkeep-audit-')))
  t.teardown(() => log.close())
  await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ user: 'u', ip: '::1', action: 'x'.repeat(200) + i, outcome: 'ok' })))
  await log.flush()
  appendFileSync(log.path, '{"time":"2026-01-01T00:00:00Z","us')
  const page = await log.page(1, 100)
  t.equal(page.total, 50)
  for (const line of readFileSync(log.path, 'utf8').split('\n').slice(0, 50)) t.doesNotThrow(() => JSON.parse(line))
})

t.test('an AuditTrail writes one entry per change for its actor: ok with what fn found out, or failed with the error code', async t => {
  const log = new AuditLog(mkdtempSync(join(tmpdir(), 'pgkeep-audit-')))
  t.teardown(() => log.close())
  const trail = new AuditTrail(log, { user: 'schedule:nightly', door: 'schedule' })
  const made = await trail.around('backup.create', async () => ({ id: 'b-1' }), r => ({ backupId: r?.id }))
  t.same(made, { id: 'b-1' })
  await t.rejects(trail.around('backup.pin', async () => { throw new NotFoundError('backup b-2') }, () => ({ backupId: 'b-2' })), { code: 'NOT_FOUND' })
  const deletions = new DeletionLog()
  const cleanup = async (): Promise<void> => { deletions.onDeleted({ id: 'b-3', name: 'x.dump' }, 'old'); throw new Error('EIO') }
  await t.rejects(trail.around('backup.cleanup', cleanup, () => deletions.fields()))
  const lines = readFileSync(log.path, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.match(lines, [
    { user: 'schedule:nightly', door: 'schedule', ip: 'local', action: 'backup.create', backupId: 'b-1', outcome: 'ok' },
    { action: 'backup.pin', backupId: 'b-2', outcome: 'failed', code: 'NOT_FOUND' },
    { action: 'backup.cleanup', outcome: 'failed', code: 'INTERNAL', deleted: [{ id: 'b-3', name: 'x.dump', reason: 'old' }] },
  ])
  t.notOk('code' in lines[0], 'no code on success')
})
