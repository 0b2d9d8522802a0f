import type { Backup } from '../../schemas/backup.ts'
import type { BackupSet, SetRestoreState } from '../../schemas/sets.ts'
import { BACKUP_COLUMNS, backupRow, formatBytes, formatDuration, formatTime, plural, table } from './output.ts'

function setDuration (s: BackupSet): number | undefined {
  const starts = s.members.map(m => m.startedAt).filter((x): x is string => x !== undefined).sort()
  if (starts.length === 0 || s.finishedAt === undefined) return undefined
  return (Date.parse(s.finishedAt) - Date.parse(starts[0])) / 1000
}

const memberLabel = (m: Backup): string => m.kind === 'globals' ? 'globals' : m.database

/**
 * `pgkeep list`: a set is one row (its id, name, status, total size) with its members under it, indented;
 * other backups as before. Members arrive in the page's order; each set's row goes where its first member was.
 */
export function listRows (items: Backup[], sets: Map<string, BackupSet>): string {
  const rows: string[][] = []
  const shown = new Set<string>()
  for (const b of items) {
    const set = b.set === undefined ? undefined : sets.get(b.set.id)
    if (set === undefined) {
      rows.push(backupRow(b))
      continue
    }
    if (shown.has(set.id)) continue
    shown.add(set.id)
    rows.push([set.id, `${set.name} (set: ${plural(set.databases.length, 'database')}${set.members.some(m => m.kind === 'globals') ? ' + globals' : ''})`,
      set.target, set.status + (set.pinned ? '*' : ''), formatBytes(set.sizeBytes), formatTime(set.createdAt), formatDuration(setDuration(set)), ''])
    for (const m of set.members) rows.push(backupRow(m, `  ${memberLabel(m)}: ${m.name}`))
  }
  return table(BACKUP_COLUMNS, rows)
}

/** `pgkeep info SETID` and the end of `create` for a set. */
export function setDetails (s: BackupSet): string {
  const head = [
    `Set:       ${s.name} (id ${s.id})`,
    `Status:    ${s.status}${s.pinned ? ', pinned (never removed by cleanup)' : ''}`,
    `Target:    ${s.target}, ${plural(s.databases.length, 'database')}: ${s.databases.join(', ')}`,
    `Size:      ${formatBytes(s.sizeBytes)}`,
    `Created:   ${formatTime(s.createdAt)} by ${s.createdBy}`,
    ...(s.error ? [`Error:     ${s.error.code}: ${s.error.message}`] : []),
    ...(s.progress ? [`Progress:  ${s.progress.percent.toFixed(1)}% (${s.progress.membersDone}/${s.progress.membersTotal} members done)`] : []),
    'Members:',
  ].join('\n')
  const rows = s.members.map(m => [`  ${memberLabel(m)}`, m.status, formatBytes(m.sizeBytes), m.name, m.id, m.error ? `${m.error.code}: ${m.error.message}` : ''])
  return `${head}\n${table(['  MEMBER', 'STATUS', 'SIZE', 'NAME', 'ID', 'ERROR'], rows)}`
}

export function setRestoreSummary (s: SetRestoreState): string {
  const lines = s.members.map(m => `  ${m.database || 'globals'}: ${m.status}${m.error ? ` (${m.error.code}: ${m.error.message})` : ''}`)
  const skipped = s.globalsSkipped.map(x => `  left alone: ${x}`)
  return [`set restore onto ${s.target}: ${s.status}`, ...lines, ...skipped].join('\n')
}
