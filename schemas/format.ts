import { Type, type Static } from 'typebox'

/** The dump's shape and its compression: the choices, the bounds of their levels, and the defaults. */
export const BackupFormat = Type.Union([
  Type.Literal('custom'), Type.Literal('plain'), Type.Literal('directory'), Type.Literal('tar'),
])
export type BackupFormat = Static<typeof BackupFormat>

export const Compression = Type.Union([Type.Literal('zstd'), Type.Literal('gzip'), Type.Literal('none')])
export type Compression = Static<typeof Compression>

export interface Bounds { min: number, max: number }

/** What each compressor accepts; `none` takes no level at all. */
export const LEVEL_RANGE = {
  zstd: { min: 1, max: 19 },
  gzip: { min: 1, max: 9 },
} as const satisfies Record<Exclude<Compression, 'none'>, Bounds>

/** The bounds any level must fall in whatever the compression: what the schema can check on its own. */
export const ANY_LEVEL: Bounds = {
  min: Math.min(...Object.values(LEVEL_RANGE).map(r => r.min)),
  max: Math.max(...Object.values(LEVEL_RANGE).map(r => r.max)),
}

/** Parallel pg_dump workers. */
export const JOBS_RANGE: Bounds = { min: 1, max: 32 }

export const DEFAULT_FORMAT: BackupFormat = 'custom'
export const DEFAULT_COMPRESSION: Compression = 'zstd'
/** The level used when a request leaves it out; an uncompressed backup records 0. */
export const DEFAULT_LEVEL: Record<Compression, number> = { zstd: 3, gzip: 6, none: 0 }
