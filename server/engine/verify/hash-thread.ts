import { Worker } from 'node:worker_threads'

/**
 * The worker's code, inline: it runs from the sources under tsx and from the CLI's bundle alike, with no file of its
 * own to find. Each session is one sha256; `update` hashes a view of a SharedArrayBuffer the sender keeps using
 * once the reply says it is hashed (no copy either way).
 */
const WORKER_JS = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const sessions = new Map()
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = sessions.get(m.id)
    if (h === undefined) sessions.set(m.id, h = createHash('sha256'))
    h.update(new Uint8Array(m.memory, 0, m.length))
    parentPort.postMessage({ id: m.id, hashed: m.seq })
  } else if (m.op === 'digest') {
    const h = sessions.get(m.id) ?? createHash('sha256')
    sessions.delete(m.id)
    parentPort.postMessage({ id: m.id, digest: h.digest('hex') })
  } else if (m.op === 'drop') {
    sessions.delete(m.id)
  }
})
`

interface Reply { id: number, hashed?: number, digest?: string }
interface Session { onHashed: (seq: number) => void, onDigest?: (hex: string) => void, onError: (err: Error) => void }

let worker: Worker | undefined
let lastId = 0
const sessions = new Map<number, Session>()

/**
 * The thread is held (ref) only while a session is open: an idle one keeps no process alive, and one with hashing
 * in flight is waited for (an unref'd worker's replies were seen to stall in a process with nothing else to do).
 */
function holdWhileBusy (): void {
  if (sessions.size > 0) worker?.ref()
  else worker?.unref()
}

function thread (): Worker {
  if (worker !== undefined) return worker
  const w = new Worker(WORKER_JS, { eval: true })
  w.on('message', (m: Reply) => {
    const s = sessions.get(m.id)
    if (s === undefined) return
    if (m.hashed !== undefined) s.onHashed(m.hashed)
    if (m.digest !== undefined) {
      sessions.delete(m.id)
      holdWhileBusy()
      s.onDigest?.(m.digest)
    }
  })
  const fail = (err: Error): void => {
    // 'error' then 'exit': the sessions were failed at the first; a newer thread's are not this one's
    if (worker !== w) return
    worker = undefined
    const failed = [...sessions.values()]
    sessions.clear()
    for (const s of failed) s.onError(err)
  }
  w.on('error', fail)
  w.on('exit', code => fail(new Error(`the hashing thread exited (${code})`)))
  worker = w
  holdWhileBusy()
  return w
}

/**
 * One sha256 computed on a thread of its own (shared by every session of the process), of chunks in shared memory
 * that the caller also sends: the hash of a download no longer takes the thread that writes it to the socket.
 */
export class ThreadHash {
  readonly #id = ++lastId
  readonly #worker = thread()
  #seq = 0
  #hashed = 0
  #failure?: Error

  /** `onHashed(seq)`: every update up to `seq` is hashed (their memory is the caller's again) */
  constructor (onHashed: (seq: number) => void, onError: (err: Error) => void) {
    sessions.set(this.#id, {
      onHashed: seq => { this.#hashed = seq; onHashed(seq) },
      onError: err => { this.#failure = err; onError(err) },
    })
    holdWhileBusy()
  }

  /** how many updates are hashed so far */
  get hashed (): number { return this.#hashed }

  /** Hashes the first `length` bytes of `memory`; returns the update's number, for onHashed. */
  update (memory: SharedArrayBuffer, length: number): number {
    const seq = ++this.#seq
    this.#worker.postMessage({ op: 'update', id: this.#id, memory, length, seq })
    return seq
  }

  /** The hex digest, once every update is hashed. */
  async digest (): Promise<string> {
    if (this.#failure !== undefined) throw this.#failure
    const session = sessions.get(this.#id)
    if (session === undefined) throw new Error('the hashing session has ended')
    return await new Promise<string>((resolve, reject) => {
      session.onDigest = resolve
      const onError = session.onError
      session.onError = err => { onError(err); reject(err) }
      this.#worker.postMessage({ op: 'digest', id: this.#id })
    })
  }

  /** Ends the session unfinished (the stream was destroyed). */
  drop (): void {
    if (!sessions.delete(this.#id)) return
    holdWhileBusy()
    this.#worker.postMessage({ op: 'drop', id: this.#id })
  }
}
