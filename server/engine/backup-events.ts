import { EventEmitter } from 'node:events'
import type { Backup, Progress } from '../../schemas/backup.ts'
import type { DeletedEvent, LogEvent, WarningEvent } from '../../schemas/events.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import type { Drill } from '../../schemas/drill.ts'
import type { SetRestoreState } from '../../schemas/sets.ts'

/** An event's payload as the engine emits it: the WebSocket message without its `type`. */
type Payload<E> = Omit<E, 'type'>

/**
 * With a shared catalog, what another instance did is told here too, marked `remote`, so viewers connected here see
 * every job; whatever acts once per event (alerts, this instance's counters) leaves those to the instance that did it.
 */
export type EventOrigin = 'remote'

/**
 * The engine's events. Their payloads are the ones schemas/events.ts declares for the WebSocket, so the
 * protocol has one declaration and the hub only adds `type`.
 */
export interface BackupEventMap {
  created: [Backup, EventOrigin?]
  status: [Backup, EventOrigin?]
  /** on every change the dump job sees (and at least once a second while it runs); the hub throttles for viewers */
  progress: [Progress, EventOrigin?]
  log: [Payload<LogEvent>]
  warning: [Payload<WarningEvent>]
  deleted: [Payload<DeletedEvent>, EventOrigin?]
  restore: [RestoreState]
  /** a restore drill started, moved on (throttled by the hub) or ended */
  drill: [Drill]
  /** a set restore's state on each step (engine/sets/set-restore.ts); its databases' restores also emit `restore` */
  'set-restore': [SetRestoreState]
}

export type BackupEventName = keyof BackupEventMap
export type BackupEventListener<K extends BackupEventName> = (...args: BackupEventMap[K]) => void

/** Typed emit/on/off over the map above; adapters (WebSocket, CLI) subscribe. */
export class BackupEvents extends EventEmitter {
  override emit<K extends BackupEventName> (event: K, ...args: BackupEventMap[K]): boolean {
    return super.emit(event, ...args)
  }

  override on<K extends BackupEventName> (event: K, listener: BackupEventListener<K>): this {
    return super.on(event, listener as (...a: unknown[]) => void)
  }

  override off<K extends BackupEventName> (event: K, listener: BackupEventListener<K>): this {
    return super.off(event, listener as (...a: unknown[]) => void)
  }

  override once<K extends BackupEventName> (event: K, listener: BackupEventListener<K>): this {
    return super.once(event, listener as (...a: unknown[]) => void)
  }
}

export interface EngineLogger {
  info: (msg: string) => void
  warn: (msg: string) => void
  error: (msg: string) => void
}

export const silentLogger: EngineLogger = { info () {}, warn () {}, error () {} }
