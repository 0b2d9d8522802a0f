import type { Migration } from './migration.ts'

/** The audit log of every instance, one ordered table. */
export const audit: Migration = {
  version: 5,
  name: 'audit',
  sql: `
CREATE TABLE pgkeep.audit (
  -- the log's order: newest first is seq descending, whichever instance wrote the entry
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  -- the entry as schemas/audit.ts has it: a field added there needs no migration
  entry jsonb NOT NULL,
  -- set by pgkeep catalog import (line number + hash of the line), so a second import adds nothing
  import_key text UNIQUE
);
`,
}
