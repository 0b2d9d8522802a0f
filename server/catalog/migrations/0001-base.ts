import type { Migration } from './migration.ts'

/** The instances sharing this catalog: each one's heartbeat tells the others whether it is alive. */
export const base: Migration = {
  version: 1,
  name: 'instances',
  sql: `
CREATE TABLE pgkeep.instances (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  worker boolean NOT NULL,
  started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  heartbeat_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
`,
}
