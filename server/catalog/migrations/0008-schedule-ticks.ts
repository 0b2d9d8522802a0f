import type { Migration } from './migration.ts'

/**
 * One row per schedule tick that was handled: fired by exactly one instance (with the job it queued) or recorded as
 * missed by whichever live instance noticed first. The primary key is what makes "once" hold across instances.
 */
export const scheduleTicks: Migration = {
  version: 8,
  name: 'schedule ticks',
  sql: `
CREATE TABLE pgkeep.schedule_ticks (
  schedule text NOT NULL,
  tick_at timestamptz NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('fired', 'missed')),
  instance_id text NOT NULL,
  job_id text,
  missed_count integer,
  recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  PRIMARY KEY (schedule, tick_at)
);
`,
}
