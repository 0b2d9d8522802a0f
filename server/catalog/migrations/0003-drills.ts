import type { Migration } from './migration.ts'

/** Drill history (was .pgkeep/drills.json): the record as jsonb, with what the history is filtered and pruned by. */
export const drills: Migration = {
  version: 3,
  name: 'drills',
  sql: `
CREATE TABLE pgkeep.drills (
  id text PRIMARY KEY,
  backup_id text NOT NULL,
  target text NOT NULL,
  status text NOT NULL,
  started_at timestamptz NOT NULL,
  record jsonb NOT NULL
);
CREATE INDEX drills_started_idx ON pgkeep.drills (started_at DESC);
`,
}
