import type pg from 'pg'
import type { Backup } from '../../../schemas/backup.ts'
import type { DrillAssertion, DrillCheck, RowCountMismatch } from '../../../schemas/drill.ts'
import type { Target } from '../../config.ts'
import { toPgkeepError } from '../../errors.ts'
import { withTargetClient } from '../pg/connection.ts'
import { qualifiedName } from '../pg/table-name.ts'
import { CHECKED_TYPES, type TocEntry } from './archive-toc.ts'

/** Lists in a check are clipped: a record names the first problems, and says how many there were. */
const SHOWN = 200

/**
 * Every object of the catalog as pg_dump's TOC spells it: `TYPE schema name`, `SCHEMA - name`,
 * `FUNCTION schema name(type, type)`. With an empty search_path format_type qualifies every type outside
 * pg_catalog, as pg_dump (which runs with one) wrote them in its function tags.
 */
const CATALOG_OBJECTS = `
  SELECT 'SCHEMA - ' || nspname AS o FROM pg_catalog.pg_namespace
  UNION ALL SELECT 'EXTENSION - ' || extname FROM pg_catalog.pg_extension
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                        WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX' ELSE 'TABLE' END
         || ' ' || n.nspname || ' ' || c.relname
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END
         || ' ' || n.nspname || ' ' || p.proname || '(' ||
         CASE WHEN p.prokind = 'a' AND p.pronargs = 0 THEN '*' ELSE coalesce((
           SELECT string_agg(pg_catalog.format_type(a.t, NULL), ', ' ORDER BY a.i)
           FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i)), '') END || ')'
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END || ' ' || n.nspname || ' ' || t.typname
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace`

/** Plain tables of the restored database (leaf partitions included), outside the system schemas and extensions. */
const USER_TABLES = `
  SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    AND c.oid NOT IN (SELECT objid FROM pg_catalog.pg_depend WHERE deptype = 'e' AND classid = 'pg_catalog.pg_class'::regclass)
  ORDER BY 1, 2`

/**
 * A TOC entry's text is `TYPE schema name owner`, unquoted: found when the catalog has it with its last words
 * (the owner, which may itself hold a space or be empty) taken off.
 */
function inCatalog (entry: TocEntry, catalog: Set<string>): boolean {
  const text = `${entry.type} ${entry.rest}`.trimEnd()
  if (catalog.has(text)) return true
  let end = text.length
  for (let words = 0; words < 3; words++) {
    end = text.lastIndexOf(' ', end - 1)
    if (end <= entry.type.length) return false
    if (catalog.has(text.slice(0, end))) return true
  }
  return false
}

const withoutOwner = (e: TocEntry): string => {
  const text = `${e.type} ${e.rest}`.trimEnd()
  const cut = text.lastIndexOf(' ')
  return cut > e.type.length ? text.slice(0, cut) : text
}

/** Check 2: every schema, table, view, sequence, index, function, type... of the archive is in the restored catalog. */
export async function objectsCheck (scratch: Target, toc: TocEntry[]): Promise<DrillCheck> {
  const wanted = toc.filter(e => CHECKED_TYPES.has(e.type))
  const catalog = await withTargetClient(scratch, async client => {
    await client.query("SET search_path = ''")
    return new Set((await client.query<{ o: string }>(CATALOG_OBJECTS)).rows.map(r => r.o))
  })
  const missing = wanted.filter(e => !inCatalog(e, catalog)).map(withoutOwner)
  return {
    kind: 'objects',
    name: 'objects',
    ok: missing.length === 0,
    checked: wanted.length,
    message: missing.length === 0
      ? `all ${wanted.length} objects of the archive's table of contents exist after the restore`
      : `${missing.length} of ${wanted.length} objects of the archive's table of contents are missing after the restore: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
    ...(missing.length > 0 ? { missing: missing.slice(0, SHOWN) } : {}),
  }
}

async function countRows (client: pg.Client, tables: string[]): Promise<Map<string, number>> {
  // counting a large table takes as long as reading it: the drill's own cancel bounds it, not a timeout
  await client.query('SET statement_timeout = 0')
  const counts = new Map<string, number>()
  for (const t of tables) counts.set(t, Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${t}`)).rows[0].n))
  return counts
}

async function userTables (client: pg.Client): Promise<string[]> {
  return (await client.query<{ schema: string, name: string }>(USER_TABLES)).rows.map(r => qualifiedName(r.schema, r.name))
}

/**
 * Check 3: rows per table. Exact against the counts recorded in the dump's snapshot (countRows); otherwise the
 * source's reltuples estimates now, each within `tolerance` (at least 10 rows): an estimate, and it says so.
 */
export async function rowCountsCheck (scratch: Target, backup: Backup, source: Target, tolerance: number): Promise<DrillCheck> {
  if (backup.options.schemaOnly) {
    return { kind: 'rowCounts', name: 'rowCounts', ok: true, skipped: true, message: 'a schema-only backup has no rows to count' }
  }
  if (backup.rowCounts !== undefined) {
    const recorded = backup.rowCounts
    const { present, counts } = await withTargetClient(scratch, async client => {
      const present = new Set(await userTables(client))
      return { present, counts: await countRows(client, recorded.map(r => r.table).filter(t => present.has(t))) }
    })
    const missing = recorded.filter(r => !present.has(r.table)).map(r => r.table)
    const mismatches: RowCountMismatch[] = recorded.filter(r => present.has(r.table) && counts.get(r.table) !== r.rows)
      .map(r => ({ table: r.table, expected: r.rows, actual: counts.get(r.table) ?? 0 }))
    const ok = missing.length === 0 && mismatches.length === 0
    const shown = mismatches.slice(0, 3).map(m => `${m.table} has ${m.actual} rows, ${m.expected} were dumped`)
    return {
      kind: 'rowCounts',
      name: 'rowCounts',
      ok,
      estimate: false,
      checked: recorded.length,
      message: ok
        ? `all ${recorded.length} tables have exactly the rows counted in the dump's snapshot`
        : [missing.length > 0 ? `${missing.length} counted tables are missing (${missing.slice(0, 3).join(', ')})` : '', mismatches.length > 0 ? `${mismatches.length} of ${recorded.length} tables differ from the counts in the dump's snapshot: ${shown.join('; ')}` : '']
          .filter(Boolean).join('; '),
      ...(mismatches.length > 0 ? { mismatches: mismatches.slice(0, SHOWN) } : {}),
      ...(missing.length > 0 ? { missing: missing.slice(0, SHOWN) } : {}),
    }
  }
  const counts = await withTargetClient(scratch, async client => await countRows(client, await userTables(client)))
  let estimates: Map<string, number>
  try {
    estimates = await withTargetClient({ ...source, database: backup.database }, async client => new Map(
      (await client.query<{ schema: string, name: string, reltuples: number }>(`
        SELECT n.nspname AS schema, c.relname AS name, c.reltuples::float8 AS reltuples FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.reltuples >= 0`)).rows
        .map(r => [qualifiedName(r.schema, r.name), Number(r.reltuples)])))
  } catch (err) {
    return { kind: 'rowCounts', name: 'rowCounts', ok: true, skipped: true, estimate: true, message: `rows were not compared: the backup recorded no counts (countRows) and the source's estimates could not be read (${toPgkeepError(err).message})` }
  }
  const mismatches: RowCountMismatch[] = []
  let compared = 0
  for (const [table, actual] of counts) {
    const expected = estimates.get(table)
    if (expected === undefined) continue
    compared++
    if (Math.abs(actual - expected) > Math.max(tolerance * expected, 10)) mismatches.push({ table, expected: Math.round(expected), actual })
  }
  const pct = `${Math.round(tolerance * 100)} %`
  return {
    kind: 'rowCounts',
    name: 'rowCounts',
    ok: mismatches.length === 0,
    estimate: true,
    checked: compared,
    message: mismatches.length === 0
      ? `estimate: ${compared} of ${counts.size} tables are within ${pct} of the source's current reltuples (the backup recorded no exact counts; take it with countRows for an exact check)`
      : `estimate: ${mismatches.length} of ${compared} tables are further than ${pct} from the source's current reltuples: ${mismatches.slice(0, 3).map(m => `${m.table} has ${m.actual} rows, about ${m.expected} expected`).join('; ')}`,
    ...(mismatches.length > 0 ? { mismatches: mismatches.slice(0, SHOWN) } : {}),
  }
}

/** What an assertion's first column of the first row reads as, to compare with `expect` as text. */
function asText (value: unknown): string {
  if (value === null) return 'null'
  if (value instanceof Date) return value.toISOString()
  return typeof value === 'object' ? JSON.stringify(value) : String(value)
}

/** Check 4: an admin's own query in the restored database, within the statement timeout. */
export async function assertionCheck (scratch: Target, assertion: DrillAssertion, statementTimeoutMs: number): Promise<DrillCheck> {
  const expected = asText(assertion.expect === undefined ? true : assertion.expect)
  const started = Date.now()
  try {
    const actual = await withTargetClient(scratch, async client => {
      await client.query(`SET statement_timeout = ${Math.floor(statementTimeoutMs)}`)
      const r = await client.query({ text: assertion.sql, rowMode: 'array' })
      const row = (r.rows as unknown[][])[0]
      return row === undefined ? '(no rows)' : asText(row[0])
    })
    const ok = actual === expected
    return {
      kind: 'assertion', name: assertion.name, ok, actual, expected, durationMs: Date.now() - started,
      message: ok ? `returned ${actual} as expected` : `returned ${actual}, expected ${expected}`,
    }
  } catch (err) {
    return { kind: 'assertion', name: assertion.name, ok: false, expected, durationMs: Date.now() - started, message: `failed: ${(err as Error)?.message ?? String(err)}` }
  }
}
