import { Type, type Static } from 'typebox'

/** GET /api/health: the process is up, nothing more (liveness). */
export const HealthReply = Type.Object({ status: Type.Literal('ok'), uptimeSeconds: Type.Number() })
export type HealthReply = Static<typeof HealthReply>

/** One thing a backup needs right now, e.g. `pg_dump`, `target:default`, `backupDir:freeSpace`. */
export const ReadinessCheck = Type.Object({ name: Type.String(), ok: Type.Boolean(), message: Type.Optional(Type.String()) })
export type ReadinessCheck = Static<typeof ReadinessCheck>

/** With a shared PostgreSQL catalog: this instance and the queue every instance shares. */
export const InstanceStatus = Type.Object({
  id: Type.String(),
  /** false when started with --no-worker (API only: it queues jobs, others run them) */
  worker: Type.Boolean(),
  concurrency: Type.Integer(),
  /** the jobs this instance holds a lease on now */
  leases: Type.Integer(),
  /** across all instances */
  queue: Type.Object({ queued: Type.Integer(), running: Type.Integer() }),
  /** instances that heartbeated within their lease */
  liveInstances: Type.Integer(),
})
export type InstanceStatus = Static<typeof InstanceStatus>

/**
 * GET /api/health/ready, 200 or 503. Without credentials only `ready` (targets, hosts and errors are not for
 * anyone who can reach the port); with any login also every check, and the failed ones as one line each,
 * and with a shared catalog this instance's status.
 */
export const ReadyReply = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Optional(Type.Array(ReadinessCheck)),
  reasons: Type.Optional(Type.Array(Type.String())),
  instance: Type.Optional(InstanceStatus),
})
export type ReadyReply = Static<typeof ReadyReply>
