/** IEC units (powers of 1024) everywhere in the dashboard, as the CLI prints them. */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
/** between a number and its unit, so "12.3 MiB/s" never wraps mid-value */
const NBSP = '\u00a0'

export function formatBytes (n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—'
  let v = n
  let i = 0
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++ }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)}${NBSP}${UNITS[i]}`
}

export function formatRate (bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`
}

export function formatSeconds (s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '—'
  const total = Math.round(s)
  if (total < 60) return `${total}s`
  const m = Math.floor(total / 60)
  if (m < 60) return `${m}m ${total % 60}s`
  return `${Math.floor(m / 60)}h ${m % 60}m`
}

export function durationSeconds (startedAt?: string, finishedAt?: string): number | undefined {
  if (!startedAt || !finishedAt) return undefined
  return (Date.parse(finishedAt) - Date.parse(startedAt)) / 1000
}

export function formatTime (iso: string | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

/** "1 backup", "2 backups"; the plural form is given when it is not just +s. */
export function plural (n: number, one: string, many = `${one}s`): string {
  return `${n}${NBSP}${n === 1 ? one : many}`
}

/** A signed size change: "+1.2 MiB", "−300 KiB", "no change". */
export function formatBytesChange (n: number): string {
  if (n === 0) return 'no change'
  return `${n > 0 ? '+' : '\u2212'}${formatBytes(Math.abs(n))}`
}

/** How long ago, in the largest unit that keeps it short: "5 min ago", "3 h ago", "2 days ago". */
export function formatAge (seconds: number): string {
  if (seconds < 60) return 'just now'
  const m = Math.floor(seconds / 60)
  if (m < 60) return `${m}${NBSP}min ago`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h}${NBSP}h ago`
  return `${plural(Math.floor(h / 24), 'day')} ago`
}
