const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes (n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—'
  let v = n
  let i = 0
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++ }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${UNITS[i]}`
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
