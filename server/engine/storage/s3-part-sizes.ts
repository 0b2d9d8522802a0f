const MiB = 1024 * 1024

/** Part buffers held at once by one upload (the one filling and those on the wire) never exceed this. */
export const MEMORY_BUDGET_BYTES = 64 * MiB
export const DEFAULT_PART_BYTES = 8 * MiB
