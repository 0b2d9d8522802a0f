import type { Role } from '../../schemas/auth.ts'

/** What the watch needs of a viewer's socket: the `ws` WebSocket fits as is. */
export interface WatchedSocket {
  ping (): void
  close (code: number, reason: string): void
  terminate (): void
  on (event: 'pong' | 'close', listener: () => void): unknown
}

/**
 * One round of credential checks for every open viewer per period, rather than a timer per socket: each
 * distinct credential is verified once per round however many sockets share it (a dashboard in several tabs,
 * one API token in many scripts). A check reads the users and tokens files; a thousand viewers each reading
 * them every few seconds cost the server more than a dump's own pipeline.
 */
export class CredentialRechecks {
  readonly #members = new Set<(round: Map<string, Promise<Role>>) => void>()
  readonly #timer: NodeJS.Timeout

  constructor (periodMs: number) {
    this.#timer = setInterval(() => { this.checkAll() }, periodMs)
    this.#timer.unref()
  }

  /** One round now (the timer's, every period). */
  checkAll (): void {
    const round = new Map<string, Promise<Role>>()
    for (const member of [...this.#members]) member(round)
  }

  /** `member` runs once per round with the round's shared checks; returns the leave function. */
  join (member: (round: Map<string, Promise<Role>>) => void): () => void {
    this.#members.add(member)
    return () => { this.#members.delete(member) }
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#members.clear()
  }
}

export interface ViewerWatchOptions {
  /** ping period; a viewer that has not answered the previous ping by the next one is dropped */
  heartbeatMs: number
  /** the rounds in which the credentials the socket was opened with are checked again */
  rechecks: CredentialRechecks
  /** what the check depends on (the Authorization and Cookie headers): sockets with the same share one check per round */
  credential: string
  /** the role the credentials grant now; throws once they no longer do (logout, revocation, removal, expiry) */
  recheck: () => Promise<Role>
  /** the role changed while the socket stayed open */
  onRole: (role: Role) => void
  /** the recheck refused the credentials; the socket is being closed */
  onRefused?: (err: unknown) => void
}

/** 1008 "policy violation": the socket's session or token is no longer valid; the client should log in again. */
export const SESSION_ENDED = 1008

/**
 * Keeps an open viewer honest: drops it when it stops answering pings (a dead peer or one that stopped
 * reading would otherwise hold its socket forever) and re-checks its credentials every few seconds, because
 * an upgrade is authorised once while a socket lives for hours. Returns the stop function (also run on close).
 */
export function watchViewer (socket: WatchedSocket, opts: ViewerWatchOptions): () => void {
  let alive = true
  let checking = false
  let stopped = false
  socket.on('pong', () => { alive = true })
  const heartbeat = setInterval(() => {
    if (!alive) { socket.terminate(); return }
    alive = false
    socket.ping()
  }, opts.heartbeatMs)
  const leave = opts.rechecks.join((round) => {
    // a slow users file must not pile checks up: skip a round while one is still out
    if (checking) return
    checking = true
    let check = round.get(opts.credential)
    if (check === undefined) {
      check = opts.recheck()
      round.set(opts.credential, check)
    }
    check.then(role => {
      if (!stopped) opts.onRole(role)
    }, err => {
      if (stopped) return
      stop()
      opts.onRefused?.(err)
      socket.close(SESSION_ENDED, 'session ended: log in again')
      // a peer that does not answer the close handshake is cut (the heartbeat is already stopped)
      setTimeout(() => socket.terminate(), opts.heartbeatMs).unref()
    }).finally(() => { checking = false })
  })
  heartbeat.unref()
  const stop = (): void => {
    stopped = true
    clearInterval(heartbeat)
    leave()
  }
  socket.on('close', stop)
  return stop
}
