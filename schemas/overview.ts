import { Type, type Static } from 'typebox'

/** One point of a target's storage curve: bytes kept (completed backups still held) after each backup. */
export const StoragePoint = Type.Object({ at: Type.String({ format: 'date-time' }), bytes: Type.Integer({ minimum: 0 }) })
export type StoragePoint = Static<typeof StoragePoint>

/** "Is this target backed up?" in one card: what an admin checks first thing in the morning. */
export const TargetOverview = Type.Object({
  target: Type.String(),
  lastCompleted: Type.Optional(Type.Object({
    id: Type.String(),
    name: Type.String(),
    finishedAt: Type.String({ format: 'date-time' }),
    ageSeconds: Type.Number({ minimum: 0 }),
    sizeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  })),
  /** the newest completed backup is older than staleAfterHours, or there is none (0 = never stale) */
  stale: Type.Boolean(),
  staleAfterHours: Type.Number({ minimum: 0 }),
  /** the earliest next run of an enabled schedule backing up this target */
  nextRun: Type.Optional(Type.Object({ at: Type.String({ format: 'date-time' }), schedule: Type.String() })),
  /** the newest drill of any of its backups, when drills exist */
  lastDrill: Type.Optional(Type.Object({ at: Type.String(), ok: Type.Boolean(), backupId: Type.String() })),
  /** backups that failed in the last 24 h (a cancel is the user's choice, not a failure) */
  failures24h: Type.Integer({ minimum: 0 }),
  lastFailure: Type.Optional(Type.Object({ id: Type.String(), at: Type.String(), code: Type.String(), message: Type.String() })),
  storage: Type.Object({
    bytes: Type.Integer({ minimum: 0 }),
    backups: Type.Integer({ minimum: 0 }),
    /** bytes now minus the bytes of backups kept today that existed 7 days ago */
    change7dBytes: Type.Integer(),
    points: Type.Array(StoragePoint),
  }),
})
export type TargetOverview = Static<typeof TargetOverview>

export const Overview = Type.Object({
  generatedAt: Type.String({ format: 'date-time' }),
  targets: Type.Array(TargetOverview),
})
export type Overview = Static<typeof Overview>
