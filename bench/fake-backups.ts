import { uuidv7 } from 'uuidv7'
import type { Backup } from '../schemas/backup.ts'

const statuses = ['completed', 'completed', 'completed', 'failed', 'cancelled'] as const

/** The i-th of a bench's made-up registry: five targets, an hour apart, most completed, as a real catalog looks. */
export function fakeBackup (i: number): Backup {
  const at = new Date(Date.UTC(2025, 0, 1) + i * 3600_000)
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
  const id = uuidv7()
  return {
    id,
    name: `t${i % 5}-app-${stamp}-${id.slice(-6)}.dump`,
    target: `t${i % 5}`,
    database: 'app',
    format: 'custom',
    compression: 'zstd',
    level: 3,
    options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
    status: statuses[i % statuses.length],
    createdAt: at.toISOString(),
    startedAt: at.toISOString(),
    finishedAt: new Date(at.getTime() + 60_000 + (i % 97) * 1000).toISOString(),
    sizeBytes: 1_000_000 + i * 37,
    rawBytes: 3_000_000 + i * 91,
    sha256: 'ab'.repeat(32),
    createdBy: i % 2 ? 'alice' : 'schedule:nightly',
    pinned: false,
  }
}
