import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import { Type } from 'typebox'
import { IdParams } from '../../../schemas/common.ts'
import { ErrorReply } from '../../../schemas/errors.ts'
import { directoryTar, tarSize } from '../directory-tar.ts'
import { errorReply } from '../error-codes.ts'
import { parseRange } from '../range.ts'

/**
 * A client that stops reading would hold its socket, our file handle (and for a directory, the tar's) for as
 * long as it likes: after `idleMs` with no byte taken, the socket is destroyed, which makes fastify destroy the
 * stream and close the file. Armed only once bytes are about to flow: the full check that a flagged backup or a
 * partial range of a stale one takes first may legitimately take longer than that with nothing sent.
 */
function cutWhenStalled (request: FastifyRequest, reply: FastifyReply, idleMs: number): void {
  reply.raw.setTimeout(idleMs, () => {
    request.log.info({ idleMs }, 'download stalled: the client read nothing for too long; cut')
    reply.raw.destroy()
  })
}

/** `?decrypt=true`: an encrypted backup decrypted by the server (its identity file), still compressed. */
const DownloadQuery = Type.Object({ decrypt: Type.Optional(Type.Boolean()) }, { additionalProperties: false })

const downloadRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const service = fastify.backupService

  fastify.get('/download/:id', {
    schema: {
      tags: ['backups'],
      params: IdParams,
      querystring: DownloadQuery,
      response: { 200: Type.Any(), 206: Type.Any(), 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 416: ErrorReply },
    },
    onRequest: fastify.requireRole('operator'),
    config: { audit: 'backup.download' },
  }, async (request, reply) => {
    const id = request.params.id
    // the audit line of this request was written when the headers left (ok); a cut adds the failure
    const onCut = async (): Promise<void> => { await fastify.audit(request, 'backup.download', { backupId: id, outcome: 'failed', code: 'INTEGRITY_FAILED' }) }
    if (request.query.decrypt === true) {
      // decrypted on the way: its length is not known before the end, and it cannot be resumed
      const { name, stream } = await service.openDecrypted(id, { onCut })
      cutWhenStalled(request, reply, fastify.config.http.downloadIdleTimeoutMs)
      return reply
        .header('Cache-Control', 'no-store')
        .header('Accept-Ranges', 'none')
        .header('Content-Disposition', `attachment; filename="${name}"`)
        .type('application/octet-stream')
        .send(stream)
    }
    const opened = await service.openVerified(id)
    const { backup, isDirectory, files } = opened
    const etag = `"${backup.sha256 ?? backup.id}"`
    void reply.header('ETag', etag).header('Cache-Control', 'no-store')

    if (isDirectory) {
      // built on the fly: its length is computed from the manifest, but it cannot be resumed
      const length = tarSize(files)
      if (length !== undefined) void reply.header('Content-Length', length)
      cutWhenStalled(request, reply, fastify.config.http.downloadIdleTimeoutMs)
      return reply
        .header('Accept-Ranges', 'none')
        .header('Content-Disposition', `attachment; filename="${backup.name}.tar"`)
        .type('application/x-tar')
        .send(directoryTar(files, async f => await opened.read(f, { onCut })))
    }

    const [file] = files
    // piped straight into the response: a local file's buffers are reused once the socket has sent them
    const readWhole = async (): Promise<Readable> => await opened.read(file, { onCut, consumerHeld: () => reply.raw.writableLength })
    // the size the manifest promises was checked against the store just now (openVerified)
    const size = file.sizeBytes
    void reply
      .header('Accept-Ranges', 'bytes')
      .header('Content-Disposition', `attachment; filename="${backup.name}"`)
      .type('application/octet-stream')
    const ifRange = request.headers['if-range']
    const range = ifRange === undefined || ifRange === etag ? parseRange(request.headers.range, size) : undefined
    if (range === 'unsatisfiable') {
      return reply.code(416).header('Content-Range', `bytes */${size}`)
        .type('application/json; charset=utf-8')
        .send(errorReply(416, 'INVALID_INPUT', `range not satisfiable; the file has ${size} bytes`))
    }
    if (range) {
      // a range that is the whole file is checked like a whole download; a part is served as the policy allows
      const whole = range.start === 0 && range.end === size - 1
      const part = whole ? await readWhole() : await opened.readRange(file, range)
      cutWhenStalled(request, reply, fastify.config.http.downloadIdleTimeoutMs)
      return reply.code(206)
        .header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
        .header('Content-Length', range.end - range.start + 1)
        .send(part)
    }
    const stream = await readWhole()
    cutWhenStalled(request, reply, fastify.config.http.downloadIdleTimeoutMs)
    return reply.header('Content-Length', size).send(stream)
  })
}

export default downloadRoutes
