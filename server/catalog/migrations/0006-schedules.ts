import type { Migration } from './migration.ts'

/** Schedules created over the API, and every schedule's run state (config schedules' too, for missed runs). */
export const schedules: Migration = {
  version: 6,
  name: 'schedules',
  sql: `
CREATE TABLE pgkeep.schedules (
  name text PRIMARY KEY,
  -- StoredSchedule (server/schedules/schedule-store.ts) as JSON
  definition jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE pgkeep.schedule_state (
  name text PRIMARY KEY,
  -- ScheduleState: last tick handled, last run, missed runs
  state jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
`,
}
