import t from 'tap'
import { parseDatabaseLevel, splitStatements } from '../../../server/engine/restore/database-level.ts'

t.test('statements split at semicolons outside quotes; comments and psql commands are left out', async t => {
  t.same(splitStatements(`-- a; comment
\\connect -reuse-previous=on "dbname='x;y'"
COMMENT ON DATABASE "a;b" IS 'it''s; here';
SELECT E'back\\\\slash\\'; quote';
ALTER DATABASE x SET search_path TO 'a', 'public';`), [
    `COMMENT ON DATABASE "a;b" IS 'it''s; here'`,
    `SELECT E'back\\\\slash\\'; quote'`,
    "ALTER DATABASE x SET search_path TO 'a', 'public'",
  ])
})

t.test('the dumped name is replaced where a statement names the database, never inside a role name or a text', async t => {
  const level = parseDatabaseLevel(`SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE DATABASE src WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';
ALTER DATABASE src OWNER TO "IN DATABASE src";
\\connect src
COMMENT ON DATABASE src IS 'ALTER DATABASE src SET x TO 1';
ALTER DATABASE src SET search_path TO 'a', 'public';
ALTER ROLE "IN DATABASE src" IN DATABASE src SET work_mem TO '8MB';
SET SESSION AUTHORIZATION bob;
GRANT CREATE,CONNECT ON DATABASE src TO "src";
RESET SESSION AUTHORIZATION;
`)
  t.ok(level)
  const to = '"new ""one"""'
  t.equal(level!.create(to), `CREATE DATABASE ${to} WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8'`)
  t.same(level!.statements(to), [
    `ALTER DATABASE ${to} OWNER TO "IN DATABASE src"`,
    `COMMENT ON DATABASE ${to} IS 'ALTER DATABASE src SET x TO 1'`,
    `ALTER DATABASE ${to} SET search_path TO 'a', 'public'`,
    `ALTER ROLE "IN DATABASE src" IN DATABASE ${to} SET work_mem TO '8MB'`,
    'SET SESSION AUTHORIZATION bob',
    `GRANT CREATE,CONNECT ON DATABASE ${to} TO "src"`,
    'RESET SESSION AUTHORIZATION',
  ])
  t.equal(parseDatabaseLevel('SET client_encoding = \'UTF8\';\n'), undefined, 'no CREATE DATABASE: nothing to carry')
})
