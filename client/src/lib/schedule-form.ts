import type { CreateBackupRequest } from '../../../schemas/backup.ts'
import { DEFAULT_COMPRESSION, DEFAULT_FORMAT } from '../../../schemas/create-rules.ts'

/** The backup fields the schedule form shows; the rest of a schedule's request is not on the form. */
export interface ScheduleBackupFields {
  target: string
  format: NonNullable<CreateBackupRequest['format']>
  compression: NonNullable<CreateBackupRequest['compression']>
}

/**
 * The request a schedule is saved with: the form's fields over what the schedule already had, since a
 * PATCH replaces `backup` whole and the form does not show level, scope or options (set over the API or
 * CLI) — saving a new cron must not silently drop them. A level belongs to its compression and parallel
 * jobs to the directory format, so those two go when the form changes what they depend on.
 */
export function scheduleBackupRequest (kept: CreateBackupRequest | undefined, form: ScheduleBackupFields): CreateBackupRequest {
  const { target: _target, format: _format, compression: _compression, ...rest } = kept ?? {}
  if ((kept?.compression ?? DEFAULT_COMPRESSION) !== form.compression) delete rest.level
  if ((kept?.format ?? DEFAULT_FORMAT) !== form.format && form.format !== 'directory') delete rest.jobs
  return { ...(form.target ? { target: form.target } : {}), format: form.format, compression: form.compression, ...rest }
}
