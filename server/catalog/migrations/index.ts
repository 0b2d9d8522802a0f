// The catalog's schema, one numbered step per file; a step is never edited once released, only followed by another.
// Plain SQL in TS modules (not .sql files) so the CLI bundle carries them.
import { base } from './0001-base.ts'
import { backups } from './0002-backups.ts'
import { drills } from './0003-drills.ts'
import { auth } from './0004-auth.ts'
import { audit } from './0005-audit.ts'
import { schedules } from './0006-schedules.ts'
import { jobs } from './0007-jobs.ts'
import { scheduleTicks } from './0008-schedule-ticks.ts'
import type { Migration } from './migration.ts'

export type { Migration }

export const MIGRATIONS: readonly Migration[] = [
  base,
  backups,
  drills,
  auth,
  audit,
  schedules,
  jobs,
  scheduleTicks,
]
