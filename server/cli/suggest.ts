/** Edit distance where swapping two neighbours is one edit ("lsit" -> "list"), as typos go; small inputs only. */
export function editDistance (a: string, b: string): number {
  let before: number[] = []
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], before[j - 2] + 1)
    }
    before = prev
    prev = row
  }
  return prev[b.length]
}

/**
 * The known word a typo most likely meant ("Did you mean --target?"), or undefined when none is close: at most
 * a third of the word's length in edits (at least 1, at most 3), or the word is a unique prefix of one, as git
 * and cargo suggest.
 */
export function closest (word: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter(k => word.length >= 2 && k.startsWith(word))
  if (prefixed.length === 1) return prefixed[0]
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)))
  let best: { k: string, d: number } | undefined
  for (const k of known) {
    const d = editDistance(word, k)
    if (d <= limit && (best === undefined || d < best.d)) best = { k, d }
  }
  return best?.k
}
