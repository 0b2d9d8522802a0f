import t from 'tap'
import type { CreateBackupRequest } from '../../schemas/backup.ts'
import { scheduleBackupRequest } from '../../client/src/lib/schedule-form.ts'

const kept: CreateBackupRequest = {
  target: 'main', format: 'directory', compression: 'gzip', level: 9, jobs: 4,
  schemaOnly: true, schemas: ['sales'], excludeTables: ['public.audit_*'], noOwner: true,
}

t.test('editing a schedule keeps the backup fields the form does not show', async t => {
  t.same(scheduleBackupRequest(kept, { target: 'main', format: 'directory', compression: 'gzip' }), kept)
  t.same(scheduleBackupRequest(kept, { target: '', format: 'directory', compression: 'gzip' }),
    { format: 'directory', compression: 'gzip', level: 9, jobs: 4, schemaOnly: true, schemas: ['sales'], excludeTables: ['public.audit_*'], noOwner: true },
    'an emptied target means the default one')
})

t.test('a level goes with a change of compression, parallel jobs with a change away from directory', async t => {
  const zstd = scheduleBackupRequest(kept, { target: 'main', format: 'directory', compression: 'zstd' })
  t.equal(zstd.level, undefined, 'gzip 9 is not carried over to zstd')
  t.equal(zstd.jobs, 4)
  const custom = scheduleBackupRequest(kept, { target: 'main', format: 'custom', compression: 'gzip' })
  t.equal(custom.jobs, undefined)
  t.equal(custom.level, 9)
  t.same(scheduleBackupRequest(undefined, { target: '', format: 'custom', compression: 'zstd' }), { format: 'custom', compression: 'zstd' }, 'a new schedule')
})
