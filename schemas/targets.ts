import { Type, type Static } from 'typebox'

/** A configured target as the dashboard and scripts see it: where it is and whether pgkeep can dump it now. Never a password. */
export const TargetInfo = Type.Object({
  name: Type.String(),
  host: Type.String(),
  port: Type.Integer(),
  database: Type.String(),
  user: Type.String(),
  /** the server answered (its version is known) */
  reachable: Type.Boolean(),
  serverVersion: Type.Optional(Type.String()),
  /** the pg_dump pgkeep would use: the newest installed */
  pgDumpVersion: Type.Optional(Type.String()),
  /** a backup could start now: reachable, credentials accepted, and pg_dump at least as new as the server */
  ok: Type.Boolean(),
  /** why not (PG_VERSION_MISMATCH names both versions and the client package to install) */
  problem: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
})
export type TargetInfo = Static<typeof TargetInfo>

export const TargetList = Type.Object({ items: Type.Array(TargetInfo) })
export type TargetList = Static<typeof TargetList>
