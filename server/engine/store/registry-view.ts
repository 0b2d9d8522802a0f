import type { Backup } from '../../../schemas/backup.ts'

/** Newest first by createdAt, then by id (UUIDv7, time-ordered); each date parsed once, not per comparison. */
export function sortNewestFirst (backups: Backup[]): Backup[] {
  return backups
    .map(b => ({ b, ms: Date.parse(b.createdAt) }))
    .sort((x, y) => (y.ms - x.ms) || (x.b.id < y.b.id ? 1 : x.b.id > y.b.id ? -1 : 0))
    .map(x => x.b)
}

/** true when a comes before b in the registry's order (newest first, then id descending). */
function before (a: Backup, b: Backup): boolean {
  const d = Date.parse(a.createdAt) - Date.parse(b.createdAt)
  return d !== 0 ? d > 0 : a.id > b.id
}

// Above this many changed records a full re-sort is cheaper than one insertion each.
const INCREMENTAL_MAX = 1000

/**
 * The registry's records in memory, as every synchronous read sees them: newest first, by id, by name. Records
 * are replaced, never mutated; a change is applied whole, between two reads, never half.
 */
export class RegistryView {
  #sorted: Backup[] = []
  #byId = new Map<string, Backup>()
  #byName = new Map<string, Backup>()

  all (): Backup[] { return this.#sorted.slice() }
  /** the records newest first, not copied: every change builds a new array, so this one never changes under a reader */
  ordered (): readonly Backup[] { return this.#sorted }
  get (id: string): Backup | undefined { return this.#byId.get(id) }
  findByName (name: string): Backup | undefined { return this.#byName.get(name) }
  /** the records by id, read-only: the base an update's changes are laid over */
  get byId (): ReadonlyMap<string, Backup> { return this.#byId }
  get size (): number { return this.#byId.size }

  replace (backups: Backup[]): void {
    this.#sorted = sortNewestFirst(backups)
    this.#byId = new Map(this.#sorted.map(b => [b.id, b]))
    this.#byName = new Map()
    // Newest wins when two records share a name (only possible after a hand edit of registry.json).
    for (let i = this.#sorted.length - 1; i >= 0; i--) this.#byName.set(this.#sorted[i].name, this.#sorted[i])
  }

  /**
   * Sets and deletes a few records without re-sorting the rest: at 100,000 records an update costs one pass
   * over the list and a binary search per changed record, not a sort.
   */
  apply (set: readonly Backup[], deleted: Iterable<string>): void {
    const leaving = new Set(deleted)
    for (const b of set) leaving.add(b.id)
    if (leaving.size === 0) return
    if (set.length > INCREMENTAL_MAX) {
      const next = new Map(this.#byId)
      for (const id of leaving) next.delete(id)
      for (const b of set) next.set(b.id, b)
      this.replace([...next.values()])
      return
    }
    for (const id of leaving) {
      const old = this.#byId.get(id)
      if (old === undefined) continue
      this.#byId.delete(id)
      if (this.#byName.get(old.name) === old) this.#byName.delete(old.name)
    }
    const sorted = this.#sorted.filter(b => !leaving.has(b.id))
    for (const b of set) {
      let lo = 0
      let hi = sorted.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (before(sorted[mid], b)) lo = mid + 1
        else hi = mid
      }
      sorted.splice(lo, 0, b)
      this.#byId.set(b.id, b)
      const sameName = this.#byName.get(b.name)
      if (sameName === undefined || before(b, sameName)) this.#byName.set(b.name, b)
    }
    this.#sorted = sorted
  }
}
