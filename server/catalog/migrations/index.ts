// The catalog's schema, one numbered step per file; a step is never edited once released, only followed by another.
// Plain SQL in TS modules (not .sql files) so the CLI bundle carries them.
import { base } from './0001-base.ts'
import { auth } from './auth.ts'
import { audit } from './audit.ts'
import { schedules } from './schedules.ts'
import type { Migration } from './migration.ts'

export type { Migration }

export const MIGRATIONS: readonly Migration[] = [
  base,
  auth,
  audit,
  schedules,
]
