// A loopback S3 for tests: s3rver behind a small HTTP proxy of ours. s3rver stores and serves objects and
// multipart parts; the proxy adds what s3rver lacks and a real store has (listing and aborting multipart uploads,
// strict access keys, verifying per-part SHA-256 checksums) and injects the faults tests ask for.
import { createHash, createHmac } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import S3rver from 's3rver'
import type { Test } from 'tap'
import type { S3Client } from '@aws-sdk/client-s3'
import { createS3Client, S3Storage, type S3StorageOptions } from '../../server/engine/storage/s3-storage.ts'
import type { RetryPolicy } from '../../server/engine/retry.ts'

/** s3rver's one account */
export const PEER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
/** quick retries, so fault tests do not wait half a second per retry */
export const FAST_PART_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 }

export interface PartRecord {
  uploadId: string
  partNumber: number
  bytes: number
  /** the x-amz-checksum-sha256 header as sent */
  checksum?: string
  checksumMatches: boolean
}

interface Countdown { skip: number, times: number }

export interface S3Peer {
  /** the proxy's url: what clients talk to */
  readonly endpoint: string
  readonly bucket: string
  /** every UploadPart the proxy accepted (after faults), in arrival order */
  readonly parts: PartRecord[]
  /** the most UploadPart requests the proxy was handling at one time */
  maxConcurrentParts (): number
  /** multipart uploads created and neither completed nor aborted */
  openUploads (): Array<{ key: string, uploadId: string }>
  /** answer UploadPart number `nth` (counted from now, 1-based) and the `times - 1` after it with 503 SlowDown */
  failPart (nth: number, times?: number): void
  /** reset the connection of UploadPart number `nth` (from now) midway through its body */
  resetPart (nth: number): void
  /** cut the body of the next `times` GetObject replies after `bytes` bytes */
  cutReads (bytes: number, times?: number): void
  /** resolves when the proxy next cuts a GetObject */
  nextCut (): Promise<void>
  /** complete the next multipart upload but drop the connection instead of answering, as a lost reply */
  dropNextCompleteReply (): void
  /** hold UploadPart number `nth` (counted from now, 1-based) and every one after it, unanswered, until releaseParts() */
  holdParts (nth: number): void
  /** lets the held parts (and every later one) through */
  releaseParts (): void
  /** answer every request 503 ServiceUnavailable */
  setUnavailable (down: boolean): void
  /** accept connections and never answer */
  setHanging (hang: boolean): void
  client (opts?: { credentials?: { accessKeyId: string, secretAccessKey: string }, idleTimeoutMs?: number }): S3Client
  storage (opts: Partial<S3StorageOptions> & { stateDir: string, credentials?: { accessKeyId: string, secretAccessKey: string }, idleTimeoutMs?: number }): S3Storage
  close (): Promise<void>
}

const xml = (body: string): string => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function sendError (res: ServerResponse, status: number, code: string, message: string): void {
  const body = xml(`<Error><Code>${code}</Code><Message>${esc(message)}</Message></Error>`)
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/**
 * Checks a request's AWS SigV4 signature against the test's secret, as a real store does (s3rver barely
 * looks): the canonical request rebuilt from what arrived, signed with the key derived from the secret.
 */
function signatureValid (req: IncomingMessage, secret: string): boolean {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(req.headers.authorization ?? '')
  if (!auth) return false
  const [, credential, signedHeaders, signature] = auth
  const [, date, region, service, terminator] = credential.split('/')
  const amzDate = req.headers['x-amz-date'] as string | undefined
  if (amzDate === undefined || terminator !== 'aws4_request') return false
  const [path, query = ''] = req.url!.split('?')
  const params = query === '' ? [] : query.split('&').map(kv => {
    const [k, v = ''] = kv.split('=')
    return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v))]
  }).sort(([a, av], [b, bv]) => a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0)
  const headers = signedHeaders.split(';').map(h => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('')
  const canonical = [req.method, path, params.map(([k, v]) => `${k}=${v}`).join('&'), headers, signedHeaders, req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD'].join('\n')
  const scope = `${date}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n')
  const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest()
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request')
  return createHmac('sha256', key).update(toSign).digest('hex') === signature
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function take (c: Countdown | undefined): boolean {
  if (!c || c.times === 0) return false
  if (c.skip > 0) { c.skip--; return false }
  c.times--
  return true
}

/** `t` closes the peer at teardown; without one (bench), call close(). */
export async function startS3Peer (t: Test | undefined, opts: { bucket?: string } = {}): Promise<S3Peer> {
  const bucket = opts.bucket ?? 'pgkeep-test'
  const dir = await mkdtemp(join(tmpdir(), 'pgkeep-s3rver-'))
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: bucket }] })
  const upstream = await s3rver.run()

  const open = new Map<string, { key: string, initiated: string }>()
  const closed = new Set<string>()
  const parts: PartRecord[] = []
  let failing: Countdown | undefined
  let resetting: Countdown | undefined
  let cutting: { bytes: number, times: number } | undefined
  let cutWaiters: Array<() => void> = []
  let droppingCompletes = 0
  let holding: { skip: number, released: Promise<void>, release: () => void } | undefined
  let unavailable = false
  let hanging = false
  const sockets = new Set<Socket>()
  const agent = new Agent({ keepAlive: false })
  const clients: S3Client[] = []
  let partsNow = 0
  let partsMax = 0

  function forward (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, onReply?: (status: number, reply: Buffer) => boolean | undefined): void {
    const headers = { ...req.headers }
    delete headers.expect
    if (body !== undefined) headers['content-length'] = String(body.length)
    const up = request({ host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers, agent }, async reply => {
      // a client that hangs up mid-body must not leave s3rver writing into a paused stream forever
      res.on('close', () => { if (!reply.complete) reply.destroy() })
      if (onReply) {
        const text = await readBody(reply)
        if (onReply(reply.statusCode!, text) === true) { req.socket.destroy(); return }
        res.writeHead(reply.statusCode!, { ...reply.headers, 'content-length': String(text.length) })
        res.end(text)
        return
      }
      const ifMatch = req.headers['if-match']
      if (req.method === 'GET' && ifMatch !== undefined && reply.statusCode! < 300 && reply.headers.etag !== ifMatch) {
        // s3rver ignores If-Match on GET; a real store answers 412 when the object changed
        reply.destroy()
        sendError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')
        return
      }
      res.writeHead(reply.statusCode!, reply.headers)
      if (cutting === undefined || cutting.times === 0 || req.method !== 'GET' || reply.statusCode! >= 300) { reply.pipe(res); return }
      cutting.times--
      let sent = 0
      const limit = cutting.bytes
      reply.on('data', (chunk: Buffer) => {
        if (sent + chunk.length >= limit) {
          res.write(chunk.subarray(0, limit - sent))
          res.flushHeaders()
          // let the bytes go out, then drop the connection as a failing network would
          setImmediate(() => {
            req.socket.destroy()
            for (const w of cutWaiters) w()
            cutWaiters = []
          })
          reply.destroy()
          sent = limit
          return
        }
        sent += chunk.length
        res.write(chunk)
      })
      reply.on('end', () => res.end())
    })
    up.on('error', err => {
      if (res.writableEnded) return
      if (!res.headersSent) sendError(res, 502, 'InternalError', err.message)
      else res.destroy()
    })
    if (body !== undefined) up.end(body)
    else req.pipe(up)
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (hanging) return
    const url = new URL(req.url!, 'http://peer')
    const q = url.searchParams
    const [, reqBucket = '', ...rest] = url.pathname.split('/')
    const key = decodeURIComponent(rest.join('/'))
    if (unavailable) {
      await readBody(req)
      sendError(res, 503, 'ServiceUnavailable', 'Please reduce your request rate.')
      return
    }
    const credential = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1]
    if (credential !== PEER_CREDENTIALS.accessKeyId) {
      await readBody(req)
      sendError(res, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.')
      return
    }
    if (!signatureValid(req, PEER_CREDENTIALS.secretAccessKey)) {
      await readBody(req)
      sendError(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.')
      return
    }
    const uploadId = q.get('uploadId')
    if (req.method === 'GET' && q.has('uploads') && key === '') {
      if (reqBucket !== bucket) { sendError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist'); return }
      const prefix = q.get('prefix') ?? ''
      const uploads = [...open].filter(([, u]) => u.key.startsWith(prefix))
        .map(([id, u]) => `<Upload><Key>${esc(u.key)}</Key><UploadId>${id}</UploadId><Initiated>${u.initiated}</Initiated></Upload>`)
      const body = xml(`<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${bucket}</Bucket><Prefix>${esc(prefix)}</Prefix><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`)
      res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    if (uploadId !== null && !open.has(uploadId)) {
      await readBody(req)
      sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.')
      return
    }
    if (req.method === 'DELETE' && uploadId !== null) {
      open.delete(uploadId)
      closed.add(uploadId)
      res.writeHead(204)
      res.end()
      return
    }
    if (req.method === 'POST' && q.has('uploads')) {
      forward(req, res, await readBody(req), (status, reply) => {
        const id = /<UploadId>([^<]+)<\/UploadId>/.exec(reply.toString())?.[1]
        if (status === 200 && id !== undefined) open.set(id, { key, initiated: new Date().toISOString() })
        return undefined
      })
      return
    }
    if (req.method === 'POST' && uploadId !== null) {
      forward(req, res, await readBody(req), status => {
        if (status === 200) { open.delete(uploadId); closed.add(uploadId) }
        const drop = status === 200 && droppingCompletes > 0
        if (drop) droppingCompletes--
        return drop
      })
      return
    }
    if (req.method === 'PUT' && uploadId !== null && q.has('partNumber')) {
      partsMax = Math.max(partsMax, ++partsNow)
      res.on('close', () => partsNow--)
      if (holding !== undefined) {
        // the body is left unread: the client's writes back up as they would against a store that stopped answering
        if (holding.skip > 0) holding.skip--
        else await holding.released
      }
      if (take(resetting)) {
        req.once('data', () => req.socket.destroy())
        return
      }
      const body = await readBody(req)
      if (take(failing)) { sendError(res, 503, 'SlowDown', 'Please reduce your request rate.'); return }
      const sent = req.headers['x-amz-checksum-sha256'] as string | undefined
      const actual = createHash('sha256').update(body).digest('base64')
      parts.push({ uploadId, partNumber: Number(q.get('partNumber')), bytes: body.length, checksum: sent, checksumMatches: sent === actual })
      if (sent !== undefined && sent !== actual) { sendError(res, 400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.'); return }
      forward(req, res, body)
      return
    }
    forward(req, res, undefined)
  }

  const proxy: Server = createServer((req, res) => {
    handle(req, res).catch(err => { if (!res.headersSent) sendError(res, 500, 'InternalError', String(err)); else res.destroy() })
  })
  proxy.on('connection', socket => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`

  let closing: Promise<void> | undefined
  const peer: S3Peer = {
    endpoint,
    bucket,
    parts,
    maxConcurrentParts: () => partsMax,
    openUploads: () => [...open].map(([uploadId, u]) => ({ key: u.key, uploadId })),
    failPart: (nth, times = 1) => { failing = { skip: nth - 1, times } },
    resetPart: nth => { resetting = { skip: nth - 1, times: 1 } },
    cutReads: (bytes, times = Infinity) => { cutting = { bytes, times } },
    nextCut: () => new Promise<void>(resolve => cutWaiters.push(resolve)),
    dropNextCompleteReply: () => { droppingCompletes++ },
    holdParts: nth => {
      let release!: () => void
      const released = new Promise<void>(resolve => { release = resolve })
      holding = { skip: nth - 1, released, release }
    },
    releaseParts: () => {
      holding?.release()
      holding = undefined
    },
    setUnavailable: down => { unavailable = down },
    setHanging: hang => { hanging = hang },
    client: (o = {}) => {
      const client = createS3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: o.credentials ?? PEER_CREDENTIALS, idleTimeoutMs: o.idleTimeoutMs })
      clients.push(client)
      return client
    },
    storage: ({ credentials, idleTimeoutMs, ...o }) => new S3Storage({
      bucket,
      partRetry: FAST_PART_RETRY,
      client: peer.client({ credentials, idleTimeoutMs }),
      ...o,
    }),
    close: () => {
      closing ??= (async () => {
        for (const c of clients) c.destroy()
        holding?.release()
        for (const s of sockets) s.destroy()
        await new Promise<void>(resolve => proxy.close(() => resolve()))
        agent.destroy()
        s3rver.httpServer?.closeAllConnections()
        await s3rver.close()
        await rm(dir, { recursive: true, force: true })
      })()
      return closing
    },
  }
  t?.teardown(() => peer.close())
  return peer
}
