import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, type Config } from '../../server/config.ts'
import type { TestCluster } from './pg-cluster.ts'

/**
 * A database with the awkward parts real ones have: quoted and unicode identifiers, a schema with a
 * space, a TOASTed column, a partitioned table, and `rows` rows of ordinary data to make the dump take time.
 */
export async function createSampleDatabase (cluster: TestCluster, name: string, opts: { rows?: number, padding?: number } = {}): Promise<void> {
  const rows = opts.rows ?? 2000
  const padding = opts.padding ?? 50
  await cluster.createDatabase(name)
  await cluster.psql(`
    CREATE TABLE public.orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note text, created_at timestamptz DEFAULT now());
    INSERT INTO public.orders (customer, amount, note)
      SELECT 'customer ' || g, (g % 1000) / 7.0, md5(g::text) || repeat(md5((g * 7)::text), ${padding} / 32 + 1)
      FROM generate_series(1, ${rows}) g;
    CREATE SCHEMA "Mixed Case";
    CREATE TABLE "Mixed Case"."Ünïcode tbl" (id int PRIMARY KEY, "Wert ü" text, "we""ird" text);
    INSERT INTO "Mixed Case"."Ünïcode tbl" VALUES (1, 'grüße', 'a"b'), (2, '日本語', 'tab	x'), (3, NULL, 'line
break');
    CREATE TABLE public."we""ird.name" (k text PRIMARY KEY, v jsonb);
    INSERT INTO public."we""ird.name" VALUES ('a', '{"x": 1}'), ('b', '[1,2,3]');
    CREATE TABLE public.blobs (id int PRIMARY KEY, body text);
    INSERT INTO public.blobs SELECT g, repeat(md5(g::text), 4000) FROM generate_series(1, 20) g;
    CREATE TABLE public.events (id int, at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO public.events SELECT g, date '2025-06-01' + (g % 400) FROM generate_series(1, 500) g;
    CREATE VIEW public.big_orders AS SELECT * FROM public.orders WHERE amount > 100;
    ANALYZE;
  `, name)
}

/**
 * A database whose restore lasts seconds while its data stays tiny: every row passes a CHECK that sleeps
 * 2 ms unless pgkeep.fast is on (it is while filling). For tests that must catch a restore mid-way.
 */
export async function createSlowRestoreDatabase (cluster: TestCluster, name: string, rows: number): Promise<void> {
  await cluster.createDatabase(name)
  await cluster.psql(`
    CREATE FUNCTION slow_ok(int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      IF current_setting('pgkeep.fast', true) IS DISTINCT FROM 'on' THEN PERFORM pg_sleep(0.002); END IF;
      RETURN true;
    END $$;
    CREATE TABLE slow (id int CHECK (slow_ok(id)));
    SET pgkeep.fast = on;
    INSERT INTO slow SELECT generate_series(1, ${rows});
  `, name)
}

/** Schema and data of every user table as one comparable string: equal fingerprints = same content. */
export async function databaseFingerprint (cluster: TestCluster, database: string): Promise<string> {
  const tables = (await cluster.psql(`
    SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'
    ORDER BY 1`, database)).trim().split('\n').filter(Boolean)
  const columns = await cluster.psql(`
    SELECT string_agg(format('%s.%s.%s:%s', table_schema, table_name, column_name, data_type), ',' ORDER BY table_schema, table_name, ordinal_position)
    FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`, database)
  const parts = [columns.trim()]
  for (const t of tables) {
    parts.push(`${t}=${(await cluster.psql(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM ONLY ${t} x`, database)).trim()}`)
  }
  return parts.join('\n')
}

/** A Config as loadConfig makes it from env, pointing at the cluster and a fresh backups dir. */
export function testConfig (cluster: TestCluster, database: string, env: Record<string, string> = {}): Config & { cleanup: () => void } {
  const backupDir = env.PGKEEP_BACKUP_DIR ?? mkdtempSync(join(tmpdir(), 'pgkeep-backups-'))
  const config = loadConfig({
    PATH: process.env.PATH,
    DATABASE_URL: cluster.url(database),
    PGKEEP_BACKUP_DIR: backupDir,
    PGKEEP_PG_BIN_DIR: cluster.binDir,
    ...env,
  })
  return { ...config, cancelGraceMs: 2000, cleanup: () => rmSync(backupDir, { recursive: true, force: true }) }
}
