import { Type, type Static } from 'typebox'
import { CreateBackupRequest, RetentionPolicy, TARGET_NAME_PATTERN } from './backup.ts'
import { BackupId, IsoDateTime } from './common.ts'

/** A schedule is addressed by its name; backups it starts carry that name as `scheduleId`. */
export const ScheduleName = Type.String({ pattern: TARGET_NAME_PATTERN, description: 'schedule name' })

/** 5 fields (minute precision) or 6 (leading seconds field); croner syntax. */
const CronExpression = Type.String({ minLength: 1, maxLength: 120, pattern: '^[^\\u0000-\\u001f]+$' })
/** IANA zone name, e.g. "Europe/Paris"; checked against the runtime's zone database on write. */
const TimeZone = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_+\\-/]+$' })

export const ScheduleCreate = Type.Object({
  name: ScheduleName,
  cron: CronExpression,
  timezone: Type.Optional(TimeZone),
  backup: Type.Optional(CreateBackupRequest),
  /** applied to the schedule's target after each successful run */
  retention: Type.Optional(RetentionPolicy),
  enabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })
export type ScheduleCreate = Static<typeof ScheduleCreate>

export const SchedulePatch = Type.Object({
  cron: Type.Optional(CronExpression),
  timezone: Type.Optional(TimeZone),
  backup: Type.Optional(CreateBackupRequest),
  retention: Type.Optional(RetentionPolicy),
  enabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, minProperties: 1 })
export type SchedulePatch = Static<typeof SchedulePatch>

export const MissedRun = Type.Object({
  scheduledAt: IsoDateTime,
  /** 'overlap': the previous run was still going; 'downtime': the server was not running */
  reason: Type.Union([Type.Literal('overlap'), Type.Literal('downtime')]),
  detectedAt: IsoDateTime,
  /** how many consecutive runs this entry stands for (a long downtime is reported once) */
  count: Type.Integer({ minimum: 1 }),
})
export type MissedRun = Static<typeof MissedRun>

export const Schedule = Type.Object({
  name: ScheduleName,
  cron: Type.String(),
  timezone: Type.Optional(Type.String()),
  backup: CreateBackupRequest,
  retention: Type.Optional(RetentionPolicy),
  enabled: Type.Boolean(),
  /** 'config' schedules come from the config file and are read-only over the API */
  source: Type.Union([Type.Literal('config'), Type.Literal('api')]),
  createdAt: Type.Optional(IsoDateTime),
  createdBy: Type.Optional(Type.String()),
  /** the next few fire times (empty when disabled) */
  nextRuns: Type.Array(IsoDateTime),
  lastRunAt: Type.Optional(IsoDateTime),
  lastBackupId: Type.Optional(BackupId),
  /** most recent first, bounded */
  missed: Type.Array(MissedRun),
})
export type Schedule = Static<typeof Schedule>

export const ScheduleList = Type.Object({ items: Type.Array(Schedule) })
export type ScheduleList = Static<typeof ScheduleList>

export const ScheduleParams = Type.Object({ name: ScheduleName }, { additionalProperties: false })
export type ScheduleParams = Static<typeof ScheduleParams>
