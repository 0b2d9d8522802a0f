// The catalog's schema, one numbered step per file; a step is never edited once released, only followed by another.
// Plain SQL in TS modules (not .sql files) so the CLI bundle carries them.
import { base } from './0001-base.ts'
import { jobs } from './jobs.ts'
import type { Migration } from './migration.ts'
import { scheduleTicks } from './schedule-ticks.ts'

export type { Migration }

export const MIGRATIONS: readonly Migration[] = [
  base,
  jobs,
  scheduleTicks,
]
