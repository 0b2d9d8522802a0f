import type { Backup } from '../../schemas/backup.ts'

/** A backup that failed on a wrong password, as the engine records it. */
export const failedBackup: Backup = {
  id: '019ab000-0000-7000-8000-000000000001',
  name: 'default-app-20260101T000000Z-abc.dump',
  target: 'default',
  database: 'app',
  format: 'custom',
  compression: 'zstd',
  level: 3,
  options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
  status: 'failed',
  createdAt: '2026-01-01T00:00:00.000Z',
  createdBy: 'alice',
  pinned: false,
  error: { code: 'PG_AUTH_FAILED', message: 'password authentication failed for user "postgres"' },
}
