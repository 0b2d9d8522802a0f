import { resolve } from 'node:path'
import type {
  Backup, BackupWithProgress, CleanupRequest, CleanupResult, CreateBackupRequest, ListQuery, ListResult, Progress, RestoreRequest,
} from '../../schemas/backup.ts'
import type { RestoreMode, RestoreProgress } from '../../schemas/restore.ts'
import type { Drill, DrillRequest } from '../../schemas/drill.ts'
import type { BackupSet, SetListQuery, SetListResult, SetRestoreRequest, SetRestoreState } from '../../schemas/sets.ts'
import { BACKUP_ID_PATTERN } from './command.ts'

/** What a command hears about the one backup it started. */
export interface BackupWatcher {
  progress (p: Progress): void
  status (b: Backup): void
  /** a pg_dump stderr line */
  log (line: string): void
}

/** A backup create has queued: its first record, its end, and how to stop it. */
export interface StartedBackup {
  backup: Backup
  /** the record once completed, failed or cancelled */
  done: Promise<Backup>
  cancel (): Promise<void>
  /** when the create made a backup set (`backup` is its first member): the whole set once every member ended; cancel stops it all */
  setDone?: Promise<BackupSet>
}

/** A set restore under way: the set, its end (a failure is in the state, not thrown), and how to stop it. */
export interface StartedSetRestore {
  set: BackupSet
  state: SetRestoreState
  done: Promise<SetRestoreState>
  cancel (): Promise<void>
}

export interface RestoreWatcher {
  progress (p: RestoreProgress): void
  /** a pg_restore/psql output line; only a restore run in this process has them */
  log (line: string): void
}

/** A restore under way: the backup it reads, its end, and how to stop it. */
export interface StartedRestore {
  backup: Backup
  /** rejects with the restore's PgkeepError, CANCELLED when it was cancelled */
  done: Promise<{ ok: true, durationMs: number, mode?: RestoreMode, replaced?: boolean }>
  cancel (): Promise<void>
}

/** A drill under way: its first state, its end (passed, failed or cancelled), and how to stop it. */
export interface StartedDrill {
  drill: Drill
  done: Promise<Drill>
  cancel (): Promise<void>
}

export interface DownloadResult {
  path: string
  bytes: number
  /** bytes already in FILE.partial from an earlier try; only a download over HTTP resumes */
  resumedFrom?: number
  sha256: string
  /** the file's sha256 was compared with the record (a tar built on the fly has none to compare with) */
  verified: boolean
}

/**
 * The backup operations the CLI's commands need, the same whether the engine runs in this process or behind
 * `--server`: a command calls these and never asks which one it has.
 */
export interface BackupApi {
  /** the server's origin when remote; undefined when the engine runs here */
  readonly origin?: string
  list (query: ListQuery): Promise<ListResult>
  /** the backup an ID, unique ID prefix (8+), name, `latest` or `latest:TARGET` means (engine/store/backup-ref.ts) */
  resolve (ref: string): Promise<Backup>
  /** removes a backup's files, manifest and copies (remote: admin only, as the API says) */
  delete (id: string): Promise<void>
  status (id: string): Promise<BackupWithProgress>
  create (req: CreateBackupRequest, watcher: BackupWatcher): Promise<StartedBackup>
  cancel (id: string): Promise<Backup>
  validate (id: string): Promise<Backup>
  pin (id: string, pinned: boolean): Promise<Backup>
  cleanup (req: CleanupRequest): Promise<CleanupResult>
  /** a completed backup into `output`, written as `output.partial` and renamed once whole and checked */
  /** `decrypt`: an encrypted backup decrypted where it is stored (the server's or this machine's identity file) */
  download (id: string, output?: string, opts?: { decrypt?: boolean }): Promise<DownloadResult>
  restore (id: string, req: RestoreRequest, watcher: RestoreWatcher): Promise<StartedRestore>
  /** a restore drill (docs/drills.md); `progress` hears every running state */
  drill (req: DrillRequest, progress: (d: Drill) => void): Promise<StartedDrill>
  listSets (query: SetListQuery): Promise<SetListResult>
  getSet (id: string): Promise<BackupSet>
  /** the globals, then every database with create; `onChange` hears each step */
  restoreSet (id: string, req: SetRestoreRequest, onChange: (s: SetRestoreState) => void): Promise<StartedSetRestore>
}

/**
 * The ID a command's BACKUP argument stands for. A full ID is used as given (one round trip fewer, and the
 * operation's own "not found"); every other form is resolved by the engine, here or on the server.
 */
export async function backupIdFor (api: BackupApi, ref: string): Promise<string> {
  return BACKUP_ID_PATTERN.test(ref) ? ref : (await api.resolve(ref)).id
}

/** Where a download lands without -o: the backup's name in the current directory; a directory arrives as a tar. */
export function downloadPath (backup: Backup, output?: string, decrypt = false): string {
  const name = decrypt ? backup.name.replace(/\.age$/, '') : backup.name
  return resolve(output ?? (backup.format === 'directory' ? `${name}.tar` : name))
}
