import type { Backup } from '../../schemas/backup.ts'
import { PgkeepError, toPgkeepError } from '../errors.ts'
import { UsageError, write, type CliIO } from './command.ts'
import { EXIT, exitCodeFor } from './exit-codes.ts'

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/**
 * IEC units (1024-based), like the dashboard: one unit system in every door. One decimal below 100 so small
 * changes stay visible; a value that would round to 1024 moves up a unit.
 */
export function formatBytes (n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-'
  let v = Math.max(0, n)
  let u = 0
  while (v >= 1023.5 && u < UNITS.length - 1) { v /= 1024; u++ }
  if (u === 0) return `${Math.round(v)} B`
  return `${v < 100 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`
}

/** "1 backup", "2 backups": a count with its noun, in the singular when it is one. */
export function plural (n: number, noun: string, pluralNoun = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : pluralNoun}`
}

export function formatDuration (seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '-'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  return `${h}h${String(m % 60).padStart(2, '0')}m`
}

export function backupDuration (b: Backup): number | undefined {
  if (!b.startedAt || !b.finishedAt) return undefined
  return (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000
}

/** Local time without seconds is what a human scanning a list wants; --json keeps the ISO form. */
export function formatTime (iso: string | undefined): string {
  if (!iso) return '-'
  const d = new Date(iso)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** Left-aligned columns separated by two spaces; numbers are pre-formatted strings. */
export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)].join('\n') + '\n'
}

export function printJson (io: CliIO, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export const BACKUP_COLUMNS = ['ID', 'NAME', 'TARGET', 'STATUS', 'SIZE', 'CREATED', 'DURATION', 'DRILL']

/** One backup's line of `pgkeep list`; a set's member passes the name it is shown under. */
export function backupRow (b: Backup, name = b.name): string[] {
  return [b.id, name, b.target, b.status + (b.pinned ? '*' : ''), formatBytes(b.sizeBytes), formatTime(b.createdAt), formatDuration(backupDuration(b)), drillCell(b)]
}

export function backupRows (items: Backup[]): string {
  return table(BACKUP_COLUMNS, items.map(b => backupRow(b)))
}

/** "restore proven <when>" for a backup whose last drill passed; FAILED when it did not; empty when never drilled. */
export function drillCell (b: Backup): string {
  if (!b.drill) return ''
  return b.drill.ok ? `restore proven ${formatTime(b.drill.at)}` : `drill FAILED ${formatTime(b.drill.at)}`
}

export function backupDetails (b: Backup): string {
  const o = b.options
  const fields: [string, string | undefined][] = [
    ['ID', b.id],
    ['Name', b.name],
    ['Status', b.status],
    ['Target', `${b.target} (database ${b.database})`],
    ['Format', `${b.format}, ${b.compression}${b.compression === 'none' ? '' : ` level ${b.level}`}`],
    ['Options', [o.schemaOnly && 'schema only', o.dataOnly && 'data only', o.schemas.length > 0 && `schemas ${o.schemas.join(',')}`,
      o.excludeTables.length > 0 && `excluding ${o.excludeTables.join(',')}`, o.jobs > 1 && `${o.jobs} jobs`].filter(Boolean).join('; ') || undefined],
    ['Size', b.sizeBytes === undefined ? undefined : `${formatBytes(b.sizeBytes)}${b.rawBytes ? ` (${formatBytes(b.rawBytes)} before compression)` : ''}`],
    ['SHA-256', b.sha256],
    ['Stored in', b.storage],
    ['Copies', b.copies?.map(c => `${c.storage} ${c.status}${c.error ? ` (${c.error.code}: ${c.error.message})` : ''}`).join('; ')],
    ['Encrypted', b.encryption && `age, to ${plural(b.encryption.recipients.length, 'recipient')}: ${b.encryption.recipients.map(r => `${r.slice(0, 12)}…`).join(', ')}`],
    ['Tables', b.tablesCount?.toString()],
    ['Created', `${formatTime(b.createdAt)} by ${b.createdBy}`],
    ['Started', b.startedAt && formatTime(b.startedAt)],
    ['Finished', b.finishedAt && `${formatTime(b.finishedAt)} (${formatDuration(backupDuration(b))})`],
    ['PostgreSQL', b.pgServerVersion && `server ${b.pgServerVersion}, pg_dump ${b.pgDumpVersion ?? '?'}`],
    ['Drill', b.drill && `${b.drill.ok ? 'restore proven' : 'FAILED'} at ${formatTime(b.drill.at)} on ${b.drill.server}${b.drill.restoreMs !== undefined ? `, restore took ${formatDuration(b.drill.restoreMs / 1000)}` : ''}${b.drill.message ? `: ${b.drill.message}` : ''} (drill ${b.drill.id})`],
    ['Row counts', b.rowCounts && `${b.rowCounts.length} tables counted in the dump's snapshot`],
    ['Verified', b.verification && `${b.verification.ok ? 'ok' : 'FAILED'} by ${b.verification.method} at ${formatTime(b.verification.at)}${b.verification.message ? `: ${b.verification.message}` : ''}`],
    ['Pinned', b.pinned ? 'yes (never removed by cleanup)' : undefined],
    ['Schedule', b.scheduleId],
    ['Error', b.error && `${b.error.code}: ${b.error.message}`],
  ]
  const shown = fields.filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '')
  const w = Math.max(...shown.map(f => f[0].length))
  return shown.map(([k, v]) => `${(k + ':').padEnd(w + 2)}${v}`).join('\n') + '\n'
}

/** Prints one line for anything a command throws and returns the exit code it maps to. */
export function reportError (io: CliIO, err: unknown, verbose = false): number {
  if (err instanceof UsageError) {
    write(io.stderr, `pgkeep: ${err.message}`)
    return EXIT.USAGE
  }
  const e = err instanceof PgkeepError ? err : toPgkeepError(err)
  write(io.stderr, `pgkeep: ${e.code}: ${e.message}`)
  if (verbose && e.code === 'INTERNAL' && e.cause instanceof Error && e.cause.stack) write(io.stderr, e.cause.stack)
  return exitCodeFor(e.code)
}
