import type { Migration } from './migration.ts'

/**
 * The backups catalog (sets are backups with set fields): one row per backup, the record as jsonb (the truth;
 * the other columns are for indexes and SQL readers), and a change sequence every write stamps its rows with,
 * so each instance's in-memory view catches up on "change_seq > mine" (catalog/pg-registry.ts). A deleted
 * backup stays a tombstone (record NULL) until pruned; backups_horizon says up to which change_seq tombstones
 * were pruned, so a view older than that reloads everything.
 */
export const backups: Migration = {
  version: 2,
  name: 'backups',
  sql: `
CREATE SEQUENCE pgkeep.backups_change_seq;
CREATE TABLE pgkeep.backups (
  id text PRIMARY KEY,
  name text NOT NULL,
  target text NOT NULL,
  database text NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL,
  set_id text,
  change_seq bigint NOT NULL,
  deleted_at timestamptz,
  record jsonb,
  CHECK ((record IS NULL) = (deleted_at IS NOT NULL))
);
CREATE UNIQUE INDEX backups_name_key ON pgkeep.backups (name) WHERE deleted_at IS NULL;
CREATE INDEX backups_change_seq_idx ON pgkeep.backups (change_seq);
CREATE INDEX backups_target_created_idx ON pgkeep.backups (target, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX backups_set_idx ON pgkeep.backups (set_id) WHERE set_id IS NOT NULL;
CREATE INDEX backups_tombstones_idx ON pgkeep.backups (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE TABLE pgkeep.backups_horizon (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO pgkeep.backups_horizon DEFAULT VALUES;
`,
}
