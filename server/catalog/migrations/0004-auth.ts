import type { Migration } from './migration.ts'

/**
 * Users, API tokens, logged-out sessions and login attempts: what every instance must agree on for a request to be
 * let in or refused the same way whichever instance it reaches.
 */
export const auth: Migration = {
  version: 4,
  name: 'auth',
  sql: `
CREATE TABLE pgkeep.users (
  username text PRIMARY KEY,
  role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  -- scrypt$N$r$p$salt$hash, never the password
  password_hash text NOT NULL,
  -- with generation, the session stamp: new on every add, so a name removed and added again is another user
  stamp_id text NOT NULL,
  generation integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  -- the order users were added in, as the users file keeps it
  seq bigint GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE pgkeep.tokens (
  id text PRIMARY KEY,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  created_at timestamptz NOT NULL,
  created_by text NOT NULL,
  expires_at timestamptz,
  revoked_at timestamptz,
  seq bigint GENERATED ALWAYS AS IDENTITY
);
-- one live token per name, also when two instances create it at the same moment
CREATE UNIQUE INDEX tokens_live_name ON pgkeep.tokens (name) WHERE revoked_at IS NULL;

-- logged-out sessions, kept until their natural expiry
CREATE TABLE pgkeep.revoked_sessions (
  jti text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

-- one fixed window per key (client + username, or username): the login limit counts attempts on every instance
CREATE TABLE pgkeep.login_attempts (
  key text PRIMARY KEY,
  hits integer NOT NULL,
  window_ends timestamptz NOT NULL
);
`,
}
