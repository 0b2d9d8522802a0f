import t from 'tap'
import { parseDatabaseLevel, splitStatements, fitCreateOptions } from '../../../server/engine/restore/database-level.ts'

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

t.test('a dumped CREATE DATABASE is fitted to an older server: options it does not know are spelled its way or left out', async t => {
  const dumped = "CREATE DATABASE x WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';"
  t.equal(fitCreateOptions(dumped, 150004), dumped, 'the server pg_dump wrote it for: as it is')
  t.equal(fitCreateOptions(dumped, 140010), "CREATE DATABASE x WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8';", 'before 15: no LOCALE_PROVIDER')
  t.equal(fitCreateOptions(dumped, 120022), "CREATE DATABASE x WITH TEMPLATE = template0 ENCODING = 'UTF8' LC_COLLATE = 'C.UTF-8' LC_CTYPE = 'C.UTF-8';", 'before 13: LOCALE spelled as LC_COLLATE and LC_CTYPE')
  t.equal(fitCreateOptions("CREATE DATABASE x WITH LOCALE_PROVIDER = icu ICU_LOCALE = 'de' ICU_RULES = '&a < b';", 150004), "CREATE DATABASE x WITH LOCALE_PROVIDER = icu ICU_LOCALE = 'de';", 'ICU rules arrived in 16')
  t.throws(() => fitCreateOptions("CREATE DATABASE x WITH LOCALE_PROVIDER = icu ICU_LOCALE = 'de';", 140010), { code: 'PG_RESTORE_FAILED', message: /uses ICU as its locale provider, which this server \(before PostgreSQL 15\) cannot create/ })
})
