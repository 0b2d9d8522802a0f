import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Target } from '../../server/config.ts'
import { inspectTarget } from '../../server/engine/pg/inspector.ts'
import type { TestCluster } from './pg-cluster.ts'

const run = promisify(execFile)

/**
 * Tables whose names make pg_dump's -n/-T pattern rules matter: case folding, quoting, dots and unicode inside
 * names, partitions in another schema than their parent, and relations pg_dump copies no data of (views,
 * materialized views, foreign tables). The estimate's re-implementation of those rules (name-pattern.ts) is
 * checked against what a real pg_dump selects on them, on every server version.
 */
export async function createNamePatternDatabase (cluster: TestCluster, db: string): Promise<void> {
  await cluster.createDatabase(db)
  await cluster.psql(`
    CREATE SCHEMA sales; CREATE SCHEMA archive; CREATE SCHEMA "Ünïcödé Schema"; CREATE SCHEMA scratch;
    CREATE TABLE public.small (id int PRIMARY KEY, note text);
    INSERT INTO public.small SELECT g, 'row ' || g FROM generate_series(1, 200) g;
    CREATE TABLE public.big_toast (id int, doc text);
    ALTER TABLE public.big_toast ALTER COLUMN doc SET STORAGE EXTERNAL;
    INSERT INTO public.big_toast SELECT g, repeat(md5(g::text), 2000) FROM generate_series(1, 30) g;
    CREATE TABLE public."MixedCase" (x int); INSERT INTO public."MixedCase" VALUES (1);
    CREATE TABLE public."dotted.name" (x int);
    CREATE UNLOGGED TABLE public.scratch_unlogged (x int); INSERT INTO public.scratch_unlogged VALUES (1);
    CREATE TABLE sales.orders (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE sales.orders_2023 PARTITION OF sales.orders FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
    CREATE TABLE sales.orders_2024 PARTITION OF sales.orders FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE archive.orders_2022 PARTITION OF sales.orders FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
    INSERT INTO sales.orders SELECT g, date '2022-01-01' + g FROM generate_series(0, 1000) g;
    CREATE TABLE sales.customers (id int);
    CREATE TABLE "Ünïcödé Schema"."täble ✓" (x text); INSERT INTO "Ünïcödé Schema"."täble ✓" VALUES ('ü');
    CREATE TABLE scratch.tmp1 (x int); CREATE TABLE scratch.tmp2 (x int);
    CREATE MATERIALIZED VIEW public.mv AS SELECT count(*) FROM public.small;
    CREATE VIEW public.v AS SELECT 1 AS one;
    CREATE SEQUENCE public.seq;
    CREATE EXTENSION postgres_fdw;
    CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname '${db}');
    CREATE FOREIGN TABLE public.remote_small (id int) SERVER loopback OPTIONS (table_name 'small');
    ANALYZE;
  `, db)
}

export interface NamePatternCase { what: string, schemas?: string[], exclude?: string[] }

/** pg_dump -n (schemas) and -T (exclude) patterns over createNamePatternDatabase's tables. */
export function namePatternCases (db: string): NamePatternCase[] {
  return [
    { what: 'one schema', schemas: ['sales'] },
    { what: 'schema wildcards and a quoted unicode schema', schemas: ['s*', '"Ünïcödé Schema"'] },
    { what: 'a ? wildcard and upper case folded to lower', schemas: ['ARCHIV?'] },
    { what: 'an unqualified exclusion (matches only tables on the search path)', exclude: ['small', 'orders_2023'] },
    { what: 'qualified exclusions with wildcards', exclude: ['sales.orders_202?', 'archive.*', '*.tmp1'] },
    { what: 'quoted mixed case against folded lower case', exclude: ['"MixedCase"', 'big_toast'] },
    { what: 'a folded name that does not match a mixed-case table', exclude: ['MixedCase'] },
    { what: 'excluding a partitioned parent', exclude: ['sales.orders'] },
    { what: 'a quoted dotted name and a unicode table', exclude: ['public."dotted.name"', '"Ünïcödé Schema"."täble ✓"'] },
    { what: 'schemas and exclusions together', schemas: ['sales', 'archive', 'public'], exclude: ['sales.customers', 'public.s*'] },
    { what: 'a database-qualified exclusion', exclude: [`${db}.scratch.tmp2`] },
    { what: 'regular-expression classes outside quotes, as pg_dump allows', exclude: ['sales.orders_202[34]'] },
  ]
}

export function patternArgs (c: NamePatternCase): string[] {
  return [...(c.schemas ?? []).flatMap(s => ['-n', s]), ...(c.exclude ?? []).flatMap(x => ['-T', x])]
}

/** What a real pg_dump (the cluster's client tools) with these filters says it copies, from its --verbose lines. */
export async function pgDumpSelection (cluster: TestCluster, db: string, args: string[]): Promise<string[]> {
  const { stderr } = await run(join(cluster.binDir, 'pg_dump'), [
    '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', db, '--verbose', '-f', '/dev/null', ...args,
  ], { env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' }, maxBuffer: 16 * 1024 * 1024 })
  return [...stderr.matchAll(/^pg_dump: dumping contents of table "(.*)"$/gm)].map(m => m[1]).sort()
}

/** The tables pgkeep's estimate counts for the same filters, as "schema.table". */
export async function estimatedTables (target: Target, schemas: string[], excludeTables: string[]): Promise<string[]> {
  const facts = await inspectTarget(target, { schemas, excludeTables, schemaOnly: false, dataOnly: false })
  return facts.tables.map(x => `${x.schema}.${x.name}`).sort()
}
