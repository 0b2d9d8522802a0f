import type pg from 'pg'
import type { Target } from '../config.ts'
import { PgkeepError } from '../errors.ts'
import { clientOptions, connectionError, loadDriver } from '../engine/pg/connection.ts'
import { backoffDelay } from '../engine/retry.ts'
import { migrate } from './migrate.ts'

export const CATALOG_APP_NAME = 'pgkeep-catalog'
const POOL_SIZE = 5
// a catalog statement is a few rows; one that waits this long is stuck behind a lock, not working
const STATEMENT_TIMEOUT_MS = 30_000
// the LISTEN connection's comeback after a catalog restart: soon, then no more than every 5 s
const LISTEN_RETRY = { attempts: Infinity, baseDelayMs: 200, maxDelayMs: 5000 }
// a write waits this long for a restarting catalog (a restart takes seconds) before it fails
const RIDE_OUT_MS = 60_000
const RIDE_OUT_RETRY = { attempts: Infinity, baseDelayMs: 200, maxDelayMs: 3000 }

/**
 * What the server says when a connection cannot be had or kept (not a statement's fault): connection exceptions,
 * shutdowns, too many connections, authentication, a missing database, a database not accepting connections.
 */
const CONNECTION_SQLSTATE = /^(08|57|28)|^(53300|3D000|55000)$/

/** The catalog could not be reached or dropped the connection: worth trying again, unlike an SQL error. */
function isConnectionFailure (err: unknown): boolean {
  return err instanceof PgkeepError && err.code === 'PG_CONNECTION_FAILED' && (err.details as { retryable?: boolean } | undefined)?.retryable === true
}

export type Queryable = Pick<pg.PoolClient, 'query'>
export type NotifyHandler = (payload: string) => void

/**
 * pgkeep's connection to the shared PostgreSQL catalog (PGKEEP_CATALOG_URL): a small pool for statements and
 * transactions, and one long-lived connection for LISTEN that comes back by itself after the catalog restarts.
 * Everything in the catalog lives in the `pgkeep` schema, created and upgraded by migrate.ts at open().
 */
export class CatalogDb {
  readonly target: Target
  readonly #pool: pg.Pool
  readonly #handlers = new Map<string, Set<NotifyHandler>>()
  #listener: pg.Client | undefined
  #listenerFailures = 0
  #reconnectTimer: NodeJS.Timeout | undefined
  /** a reconnect of the LISTEN connection in flight: close() waits for it, so it cannot land after */
  #connecting: Promise<void> | undefined
  #closed = false
  readonly #reconnectListeners = new Set<() => void>()

  private constructor (target: Target, pool: pg.Pool) {
    this.target = target
    this.#pool = pool
  }

  /** Connects, runs the migrations the catalog has not seen yet, and starts listening. */
  static async open (target: Target): Promise<CatalogDb> {
    const { Pool } = await loadDriver()
    const pool = new Pool({
      ...clientOptions(target, CATALOG_APP_NAME),
      statement_timeout: STATEMENT_TIMEOUT_MS,
      max: POOL_SIZE,
      idleTimeoutMillis: 30_000,
    })
    // an idle client dropped by a catalog restart arrives here; unhandled it would kill the process
    pool.on('error', () => {})
    const db = new CatalogDb(target, pool)
    try {
      await db.transaction(client => migrate(client))
      await db.#connectListener()
    } catch (err) {
      await pool.end().catch(() => {})
      throw err
    }
    return db
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow> (text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(text, values)
    } catch (err) {
      throw this.#wrap(err)
    }
  }

  /** fn runs inside BEGIN/COMMIT on one connection; a throw rolls back. */
  async transaction<T> (fn: (client: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (err) {
      throw this.#wrap(err)
    }
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw this.#wrap(err)
    } finally {
      client.release()
    }
  }

  /**
   * A transaction that rides out a catalog restart: one that failed on its connection (refused, dropped, the server
   * shutting down or starting up) is run again, soon and then every few seconds, for up to `withinMs`. fn must be
   * safe to run again: a COMMIT whose connection dropped may or may not have landed.
   */
  async transactionRetried<T> (fn: (client: Queryable) => Promise<T>, withinMs: number = RIDE_OUT_MS): Promise<T> {
    const deadline = Date.now() + withinMs
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.transaction(fn)
      } catch (err) {
        const delay = backoffDelay(attempt, RIDE_OUT_RETRY)
        if (this.#closed || !isConnectionFailure(err) || Date.now() + delay > deadline) throw err
        await new Promise(resolve => setTimeout(resolve, delay))
      }
    }
  }

  /** Calls handler with each NOTIFY payload on channel (a plain identifier) until the returned function is called. */
  async listen (channel: string, handler: NotifyHandler): Promise<() => void> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`)
    let set = this.#handlers.get(channel)
    if (set === undefined) {
      set = new Set()
      this.#handlers.set(channel, set)
      await this.#listener?.query(`LISTEN ${channel}`).catch(() => {})
    }
    set.add(handler)
    return () => { set.delete(handler) }
  }

  /**
   * Calls fn each time the LISTEN connection comes back: notifications sent while it was down were lost, so
   * readers re-read. Returns the way to stop.
   */
  onReconnect (fn: () => void): () => void {
    this.#reconnectListeners.add(fn)
    return () => { this.#reconnectListeners.delete(fn) }
  }

  /** pg_notify within a transaction's client (sent at commit) or on its own. */
  async notify (channel: string, payload: string, client?: Queryable): Promise<void> {
    const q = 'SELECT pg_catalog.pg_notify($1, $2)'
    if (client !== undefined) await client.query(q, [channel, payload])
    else await this.query(q, [channel, payload])
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#reconnectTimer)
    await this.#connecting
    await this.#listener?.end().catch(() => {})
    await this.#pool.end().catch(() => {})
  }

  async #connectListener (): Promise<void> {
    const { Client } = await loadDriver()
    const t = this.target
    const client = new Client(clientOptions(t, CATALOG_APP_NAME))
    client.on('error', () => {})
    try {
      await client.connect()
      for (const channel of this.#handlers.keys()) await client.query(`LISTEN ${channel}`)
    } catch (err) {
      await client.end().catch(() => {})
      throw connectionError(err, t)
    }
    // closed while this connection was being made (a reconnect in flight): it would keep the process alive
    if (this.#closed) {
      await client.end().catch(() => {})
      return
    }
    client.on('notification', msg => {
      for (const handler of this.#handlers.get(msg.channel) ?? []) handler(msg.payload ?? '')
    })
    client.on('end', () => {
      if (this.#listener === client) this.#listener = undefined
      this.#scheduleReconnect()
    })
    this.#listener = client
    this.#listenerFailures = 0
  }

  #scheduleReconnect (): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return
    const delay = backoffDelay(this.#listenerFailures++, LISTEN_RETRY)
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      if (this.#closed) return
      this.#connecting = this.#connectListener().then(() => { if (!this.#closed) for (const fn of this.#reconnectListeners) fn() }, () => { this.#scheduleReconnect() })
    }, delay)
    this.#reconnectTimer.unref()
  }

  #wrap (err: unknown): unknown {
    if (err instanceof PgkeepError) return err
    // SQL errors of our own statements are bugs or conflicts the caller handles; connection failures get the words
    const code = (err as { code?: unknown })?.code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !CONNECTION_SQLSTATE.test(code)) return err
    return connectionError(err, this.target)
  }
}
