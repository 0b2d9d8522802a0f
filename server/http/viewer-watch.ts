import type { Role } from '../../schemas/auth.ts'

/** What the watch needs of a viewer's socket: the `ws` WebSocket fits as is. */
export interface WatchedSocket {
  ping (): void
  close (code: number, reason: string): void
  terminate (): void
  on (event: 'pong' | 'close', listener: () => void): unknown
}

export interface ViewerWatchOptions {
  /** ping period; a viewer that has not answered the previous ping by the next one is dropped */
  heartbeatMs: number
  /** how often the credentials the socket was opened with are checked again */
  recheckMs: number
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
  const recheck = setInterval(() => {
    // a slow users file must not pile checks up: skip a tick while one is still out
    if (checking) return
    checking = true
    opts.recheck().then(role => {
      if (!stopped) opts.onRole(role)
    }, err => {
      if (stopped) return
      stop()
      opts.onRefused?.(err)
      socket.close(SESSION_ENDED, 'session ended: log in again')
      // a peer that does not answer the close handshake is cut (the heartbeat is already stopped)
      setTimeout(() => socket.terminate(), opts.heartbeatMs).unref()
    }).finally(() => { checking = false })
  }, opts.recheckMs)
  heartbeat.unref()
  recheck.unref()
  const stop = (): void => {
    stopped = true
    clearInterval(heartbeat)
    clearInterval(recheck)
  }
  socket.on('close', stop)
  return stop
}
