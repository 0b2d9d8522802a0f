/**
 * A Map laid over a read-only base: reads see the base with this map's changes, writes touch only the
 * overlay, and changes() says which keys were set or deleted. An update at 100,000 records hands its fn one
 * of these instead of a copy, and writes back only what fn changed; when fn throws the base is untouched.
 * Iteration follows a Map's rules: base keys in place (with their new values), added keys after, in order.
 */
export class ChangeTrackingMap<K, V> implements Map<K, V> {
  readonly #base: ReadonlyMap<K, V>
  /** new values of base keys */
  readonly #replaced = new Map<K, V>()
  /** keys the base does not have */
  readonly #added = new Map<K, V>()
  readonly #deleted = new Set<K>()

  constructor (base: ReadonlyMap<K, V>) {
    this.#base = base
  }

  get [Symbol.toStringTag] (): string { return 'ChangeTrackingMap' }

  get size (): number { return this.#base.size - this.#deleted.size + this.#added.size }

  has (key: K): boolean {
    if (this.#added.has(key)) return true
    return this.#base.has(key) && !this.#deleted.has(key)
  }

  get (key: K): V | undefined {
    if (this.#added.has(key)) return this.#added.get(key)
    if (this.#deleted.has(key)) return undefined
    return this.#replaced.has(key) ? this.#replaced.get(key) : this.#base.get(key)
  }

  set (key: K, value: V): this {
    if (this.#base.has(key)) {
      this.#deleted.delete(key)
      this.#replaced.set(key, value)
    } else {
      this.#added.set(key, value)
    }
    return this
  }

  delete (key: K): boolean {
    if (this.#added.delete(key)) return true
    if (!this.#base.has(key) || this.#deleted.has(key)) return false
    this.#replaced.delete(key)
    this.#deleted.add(key)
    return true
  }

  clear (): void {
    this.#added.clear()
    this.#replaced.clear()
    for (const key of this.#base.keys()) this.#deleted.add(key)
  }

  * entries (): MapIterator<[K, V]> {
    for (const [key, value] of this.#base) {
      if (this.#deleted.has(key)) continue
      yield [key, this.#replaced.has(key) ? this.#replaced.get(key) as V : value]
    }
    yield * this.#added.entries()
  }

  * keys (): MapIterator<K> {
    for (const [key] of this.entries()) yield key
  }

  * values (): MapIterator<V> {
    for (const [, value] of this.entries()) yield value
  }

  [Symbol.iterator] (): MapIterator<[K, V]> {
    return this.entries()
  }

  forEach (fn: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) fn.call(thisArg, value, key, this)
  }

  /** What fn did: the values set (new and replaced) and the base keys deleted. */
  changes (): { set: V[], deleted: K[] } {
    return { set: [...this.#replaced.values(), ...this.#added.values()], deleted: [...this.#deleted] }
  }
}
