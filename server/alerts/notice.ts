import type { Backup } from '../../schemas/backup.ts'
import type { WarningEvent } from '../../schemas/events.ts'
import type { NotificationEvent } from '../../schemas/notifications.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import type { MissedRun } from '../../schemas/schedule.ts'

/** A running backup's warning as the engine emits it (schemas/events.ts WarningEvent without its type). */
export type BackupWarning = Omit<WarningEvent, 'type'>

/**
 * What a failed drill tells the channels: the part of a drill record (schemas/drill.ts) a message needs, so the
 * drills module passes its record as it is and the generic webhook carries all of it (docs/notifications.md).
 */
export interface DrillFailure {
  id?: string
  backupId: string
  backupName?: string
  target?: string
  /** why it could not finish (the restore failed, the scratch database could not be made) */
  error?: { code: string, message: string }
  /** the checks; the failed ones say why when there is no error */
  checks?: { name: string, ok: boolean, skipped?: boolean, message: string }[]
}

/**
 * One thing worth telling: its event name and the facts, as the generic webhook sends them (next to `text`
 * and `at`). `test` is the "send test message" action's own, and no channel subscribes to it.
 */
export type Notice =
  | { event: 'backup.failed' | 'backup.succeeded' | 'validation.failed', backup: Backup }
  | { event: 'backup.warning', warning: BackupWarning, backup?: Backup }
  | { event: 'schedule.missed', schedule: { name: string } & MissedRun }
  | { event: 'target.stale', target: { name: string, maxAgeHours: number, lastBackupAt?: string, lastBackupName?: string } }
  | { event: 'drill.failed', drill: DrillFailure }
  | { event: 'storage.low', storage: { path: string, freeBytes: number, minFreeBytes: number } }
  | { event: 'restore.finished', restore: RestoreState, backup?: Backup }
  | { event: 'test', test: { channel: string } }

export type NoticeEvent = NotificationEvent | 'test'

export type Severity = 'error' | 'warning' | 'success' | 'info'

/** A notice in words, for every channel to lay out its own way. */
export interface Message {
  severity: Severity
  /** a short line: the subject of a mail, the title of a card or a push */
  title: string
  /** one plain sentence */
  text: string
  /** the Slack-flavoured line the generic webhook has always sent as `text` (mrkdwn *bold*, :emoji:) */
  slackText: string
  /** label/value facts shown as a card's fields */
  fields: { label: string, value: string }[]
  /** when the notice was made; every attempt at delivering it says the same */
  at: string
}

const EMOJI: Record<Severity, string> = { error: ':red_circle:', warning: ':warning:', success: ':white_check_mark:', info: ':information_source:' }

function iec (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let n = bytes
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`
}

function hours (h: number): string {
  return h >= 48 && h % 24 === 0 ? `${h / 24} days` : `${h} h`
}

function backupFields (b: Backup): Message['fields'] {
  return [
    { label: 'Target', value: `${b.target}/${b.database}` },
    { label: 'Backup', value: b.name },
    ...(b.error ? [{ label: 'Error', value: `${b.error.code}: ${b.error.message}` }] : []),
    ...(b.status === 'completed' && b.sizeBytes !== undefined ? [{ label: 'Size', value: iec(b.sizeBytes) }] : []),
    ...(b.finishedAt ? [{ label: 'Finished', value: b.finishedAt }] : []),
  ]
}

/** `*x*` in Slack's words, plain elsewhere: the one sentence of a notice is written once for both. */
type Bold = (s: string) => string

function describe (n: Notice, bold: Bold): Omit<Message, 'slackText' | 'text' | 'at'> & { sentence: string } {
  switch (n.event) {
    case 'backup.failed': {
      const b = n.backup
      const why = b.error ? `${b.error.code}: ${b.error.message}` : 'unknown error'
      return { severity: 'error', title: `Backup failed: ${b.target}/${b.database}`, sentence: `backup ${bold(b.name)} of ${b.target}/${b.database} failed (${why})`, fields: backupFields(b) }
    }
    case 'backup.succeeded': {
      const b = n.backup
      const size = b.sizeBytes !== undefined ? ` (${iec(b.sizeBytes)})` : ''
      return { severity: 'success', title: `Backup completed: ${b.target}/${b.database}`, sentence: `backup ${bold(b.name)} of ${b.target}/${b.database} completed${size}`, fields: backupFields(b) }
    }
    case 'validation.failed': {
      const b = n.backup
      const why = b.verification?.message ?? 'integrity check failed'
      return { severity: 'warning', title: `Validation failed: ${b.target}/${b.database}`, sentence: `validation of backup ${bold(b.name)} (${b.target}/${b.database}) failed: ${why}`, fields: [...backupFields(b), { label: 'Check', value: why }] }
    }
    case 'backup.warning': {
      const b = n.backup
      const which = b ? `${bold(b.name)} of ${b.target}/${b.database}` : n.warning.backupId
      return {
        severity: 'warning',
        title: b ? `Backup warning: ${b.target}/${b.database}` : 'Backup warning',
        sentence: `backup ${which}: ${n.warning.message}`,
        fields: [...(b ? backupFields(b) : [{ label: 'Backup', value: n.warning.backupId }]), { label: 'Warning', value: n.warning.message }],
      }
    }
    case 'schedule.missed': {
      const s = n.schedule
      const why = s.reason === 'overlap' ? 'the previous run was still in progress' : 'the server was not running'
      const runs = s.count > 1 ? ` (${s.count} runs)` : ''
      return {
        severity: 'warning',
        title: `Schedule missed a run: ${s.name}`,
        sentence: `schedule ${bold(s.name)} missed its run at ${s.scheduledAt}: ${why}${runs}`,
        fields: [{ label: 'Schedule', value: s.name }, { label: 'Due', value: s.scheduledAt }, { label: 'Why', value: why }],
      }
    }
    case 'target.stale': {
      const t = n.target
      const last = t.lastBackupAt ? `its newest completed backup is from ${t.lastBackupAt}` : 'it has no completed backup'
      return {
        severity: 'error',
        title: `Target stale: ${t.name}`,
        sentence: `target ${bold(t.name)} is stale: ${last}, older than ${hours(t.maxAgeHours)}`,
        fields: [{ label: 'Target', value: t.name }, { label: 'Newest backup', value: t.lastBackupName ? `${t.lastBackupName} (${t.lastBackupAt})` : 'none' }, { label: 'Maximum age', value: hours(t.maxAgeHours) }],
      }
    }
    case 'drill.failed': {
      const d = n.drill
      const why = d.error
        ? `${d.error.code}: ${d.error.message}`
        : (d.checks ?? []).filter(c => !c.ok && !c.skipped).map(c => `${c.name}: ${c.message}`).join('; ') || 'a check failed'
      return {
        severity: 'error',
        title: `Restore drill failed${d.target ? `: ${d.target}` : ''}`,
        sentence: `restore drill of ${bold(d.backupName ?? d.backupId)}${d.target ? ` (${d.target})` : ''} failed: ${why}`,
        fields: [
          { label: 'Backup', value: d.backupName ?? d.backupId },
          ...(d.target ? [{ label: 'Target', value: d.target }] : []),
          { label: 'Why', value: why },
        ],
      }
    }
    case 'storage.low': {
      const s = n.storage
      return {
        severity: 'error',
        title: 'Backup storage low on space',
        sentence: `only ${iec(s.freeBytes)} free on ${bold(s.path)}, below the ${iec(s.minFreeBytes)} minimum`,
        fields: [{ label: 'Path', value: s.path }, { label: 'Free', value: iec(s.freeBytes) }, { label: 'Minimum', value: iec(s.minFreeBytes) }],
      }
    }
    case 'restore.finished': {
      const r = n.restore
      const b = n.backup
      const from = b ? ` of backup ${bold(b.name)}` : ''
      const outcome = r.status === 'completed' ? 'completed' : r.status === 'cancelled' ? 'was cancelled' : `failed (${r.error ? `${r.error.code}: ${r.error.message}` : 'unknown error'})`
      return {
        severity: r.status === 'completed' ? 'success' : r.status === 'cancelled' ? 'info' : 'error',
        title: `Restore ${r.status === 'completed' ? 'completed' : r.status}: ${r.database}`,
        sentence: `restore${from} into database ${bold(r.database)} ${outcome}`,
        fields: [
          { label: 'Database', value: r.database },
          ...(b ? [{ label: 'Backup', value: b.name }, { label: 'Target', value: `${b.target}/${b.database}` }] : []),
          ...(r.error ? [{ label: 'Error', value: `${r.error.code}: ${r.error.message}` }] : []),
        ],
      }
    }
    case 'test':
      return { severity: 'info', title: 'Test message', sentence: `test message for channel ${bold(n.test.channel)}: notifications reach this destination`, fields: [] }
  }
}

export function renderMessage (n: Notice): Message {
  const { sentence: slack, ...rest } = describe(n, s => `*${s}*`)
  const plain = describe(n, s => s).sentence
  return { ...rest, text: `pgkeep ${plain}`, slackText: `${EMOJI[rest.severity]} pgkeep ${slack}`, at: new Date().toISOString() }
}
