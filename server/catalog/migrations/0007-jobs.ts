import type { Migration } from './migration.ts'

/**
 * The shared job queue (job-queue.ts): one row per backup, restore or drill run, claimed by one instance's worker
 * under a lease that instance keeps renewing. Every time is the catalog server's clock, never an instance's, so
 * hosts whose clocks disagree still agree on whose lease has run out. Instances say how long their last heartbeat
 * holds (alive_until), so "live" needs no agreed threshold.
 */
export const jobs: Migration = {
  version: 7,
  name: 'jobs',
  sql: `
ALTER TABLE pgkeep.instances
  ADD COLUMN alive_until timestamptz NOT NULL DEFAULT pg_catalog.now(),
  ADD COLUMN concurrency integer NOT NULL DEFAULT 0;

CREATE TABLE pgkeep.jobs (
  id text PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  kind text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
  instance_id text,
  lease_expires_at timestamptz,
  cancel_requested boolean NOT NULL DEFAULT false,
  attempt integer NOT NULL DEFAULT 0,
  error jsonb,
  cleaner_id text,
  cleanup_attempts integer NOT NULL DEFAULT 0,
  cleaned_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  started_at timestamptz,
  finished_at timestamptz
);
CREATE INDEX jobs_queued ON pgkeep.jobs (seq) WHERE state = 'queued';
CREATE INDEX jobs_leased ON pgkeep.jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX jobs_instance ON pgkeep.jobs (instance_id) WHERE state = 'running';

CREATE VIEW pgkeep.live_instances AS
  SELECT i.id, i.host, i.pid, i.version, i.worker, i.concurrency, i.started_at, i.heartbeat_at, i.alive_until,
    (SELECT count(*) FROM pgkeep.jobs j WHERE j.instance_id = i.id AND j.state = 'running')::integer AS running
  FROM pgkeep.instances i
  WHERE i.alive_until > pg_catalog.now();
`,
}
