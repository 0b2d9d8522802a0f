/**
 * One `bytes=` range (what resuming downloaders send). Several ranges or a malformed header are ignored
 * (the whole file is served, as RFC 9110 allows); a range past the end is 'unsatisfiable'.
 */
export function parseRange (header: string | undefined, size: number): { start: number, end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return 'unsatisfiable'
  return { start, end }
}
