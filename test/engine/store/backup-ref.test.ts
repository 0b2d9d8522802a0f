import t from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { resolveBackupRef } from '../../../server/engine/store/backup-ref.ts'

function backup (id: string, name: string, target: string, createdAt: string, status: Backup['status'] = 'completed'): Backup {
  return {
    id, name, target, database: 'app', format: 'custom', compression: 'zstd', level: 3, status, createdAt, createdBy: 'test', pinned: false,
    options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
  }
}

const all = [
  backup('0193aaaa-0000-7000-8000-000000000001', 'a-1.dump', 'a', '2026-11-01T00:00:00Z'),
  backup('0193aaaa-0000-7000-8000-000000000002', 'b-1.dump', 'b', '2026-11-02T00:00:00Z'),
  backup('0193bbbb-0000-7000-8000-000000000003', 'a-2.dump', 'a', '2026-11-03T00:00:00Z'),
  backup('0193cccc-0000-7000-8000-000000000004', 'a-3.dump', 'a', '2026-11-04T00:00:00Z', 'failed'),
]

t.test('a full ID, a unique prefix of 8+ characters and a name each find their backup', async t => {
  t.equal(resolveBackupRef('0193aaaa-0000-7000-8000-000000000002', all).name, 'b-1.dump')
  t.equal(resolveBackupRef('0193bbbb', all).name, 'a-2.dump')
  t.equal(resolveBackupRef('0193bbbb-0000-7000', all).name, 'a-2.dump', 'a prefix may run past the first dash')
  t.equal(resolveBackupRef('a-2.dump', all).id, '0193bbbb-0000-7000-8000-000000000003')
})

t.test('latest is the newest completed backup; latest:TARGET the newest completed one of that target', async t => {
  t.equal(resolveBackupRef('latest', all).name, 'a-2.dump', 'the failed a-3 is newer but not completed')
  t.equal(resolveBackupRef('latest:b', all).name, 'b-1.dump')
  t.throws(() => resolveBackupRef('latest:nosuch', all), { code: 'NOT_FOUND', message: /completed backup of target "nosuch"/ })
  t.throws(() => resolveBackupRef('latest', []), { code: 'NOT_FOUND' })
})

t.test('an ambiguous prefix is INVALID_INPUT naming every candidate; a short one asks for 8 characters', async t => {
  t.throws(() => resolveBackupRef('0193aaaa', all), {
    code: 'INVALID_INPUT',
    message: 'ID prefix "0193aaaa" matches 2 backups: 0193aaaa-0000-7000-8000-000000000001 a-1.dump; 0193aaaa-0000-7000-8000-000000000002 b-1.dump; give more characters',
  })
  t.throws(() => resolveBackupRef('0193', all), { code: 'INVALID_INPUT', message: /at least 8 characters/ })
})

t.test('nothing matching is NOT_FOUND, whatever the form', async t => {
  t.throws(() => resolveBackupRef('0193dddd', all), { code: 'NOT_FOUND' })
  t.throws(() => resolveBackupRef('0193dddd-0000-7000-8000-000000000009', all), { code: 'NOT_FOUND', message: 'backup 0193dddd-0000-7000-8000-000000000009 not found' })
  t.throws(() => resolveBackupRef('no-such-name.dump', all), { code: 'NOT_FOUND' })
})
