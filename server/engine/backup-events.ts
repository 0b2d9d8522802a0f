import { EventEmitter } from 'node:events'
import type { Backup, Progress } from '../../schemas/backup.ts'
import type { RestoreState } from '../../schemas/restore.ts'

export interface BackupEventMap {
  created: [Backup]
  status: [Backup]
  progress: [Progress]
  log: [{ backupId: string, line: string, at: string }]
  deleted: [{ backupId: string }]
  restore: [RestoreState]
}

/** The engine's events, declared once; adapters (WebSocket, CLI) subscribe. */
export class BackupEvents extends EventEmitter {
  override emit<K extends keyof BackupEventMap> (event: K, ...args: BackupEventMap[K]): boolean {
    return super.emit(event, ...args)
  }

  override on<K extends keyof BackupEventMap> (event: K, listener: (...args: BackupEventMap[K]) => void): this {
    return super.on(event, listener as (...a: unknown[]) => void)
  }

  override off<K extends keyof BackupEventMap> (event: K, listener: (...args: BackupEventMap[K]) => void): this {
    return super.off(event, listener as (...a: unknown[]) => void)
  }

  override once<K extends keyof BackupEventMap> (event: K, listener: (...args: BackupEventMap[K]) => void): this {
    return super.once(event, listener as (...a: unknown[]) => void)
  }
}

export interface EngineLogger {
  info: (msg: string) => void
  warn: (msg: string) => void
  error: (msg: string) => void
}

export const silentLogger: EngineLogger = { info () {}, warn () {}, error () {} }
