import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuditOutcome } from '../../../../schemas/audit.ts'
import type { AuditStore } from '../../../audit/audit-log.ts'
import type { CatalogDb } from '../../../catalog/catalog-db.ts'
import { auditStore } from '../../../catalog/catalog-stores.ts'
import type { AuditFields } from '../../../audit/audit-trail.ts'

export type AuditDetails = AuditFields & { outcome: AuditOutcome, code?: string, user?: string }

declare module 'fastify' {
  interface FastifyInstance {
    auditLog: AuditStore
    /** Appends one audit line for this request's caller. */
    audit (request: FastifyRequest, action: string, details: AuditDetails): Promise<void>
  }
  interface FastifyRequest {
    /** set by handlers when the audited backup id is not in the URL (create), or the user is not authenticated (login) */
    auditBackupId?: string
    auditUser?: string
    /** any other field of this request's entry (schemas/audit.ts), set by a hook or the handler */
    auditFields?: AuditFields
  }
  interface FastifyContextConfig {
    /** audit action written once per request, whatever the outcome (ok, denied, failed) */
    audit?: string
  }
}

function outcomeOf (status: number): AuditOutcome {
  if (status < 400) return 'ok'
  return status === 401 || status === 403 || status === 429 ? 'denied' : 'failed'
}

function codeOf (payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined
  try { return (JSON.parse(payload) as { code?: string }).code } catch { return undefined }
}

/**
 * Routes name their action in `config.audit`; the line is written in onSend, before the reply leaves, so a
 * client that saw the response can already read its audit entry. Denied and failed calls are recorded too.
 */
export default fp<{ backupDir: string, catalog?: CatalogDb }>(async (fastify, opts) => {
  const log = await auditStore(opts.backupDir, opts.catalog)
  fastify.decorate('auditLog', log)
  fastify.decorateRequest('auditBackupId', undefined)
  fastify.decorateRequest('auditUser', undefined)
  fastify.decorateRequest('auditFields', undefined)

  fastify.decorate('audit', async (request: FastifyRequest, action: string, details: AuditDetails) => {
    const { user, outcome, code, ...fields } = details
    await log.append({
      user: user ?? request.principal?.username ?? request.auditUser ?? 'anonymous',
      role: request.principal?.role,
      door: 'http',
      ip: request.ip,
      action,
      ...fields,
      outcome,
      code,
    })
  })

  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const action = request.routeOptions.config?.audit
    if (!action) return payload
    const params = request.params as { id?: string } | undefined
    const status = reply.statusCode
    await fastify.audit(request, action, {
      ...request.auditFields,
      backupId: request.auditBackupId ?? request.auditFields?.backupId ?? (params?.id && /^[0-9a-f-]{36}$/.test(params.id) ? params.id : undefined),
      outcome: outcomeOf(status),
      code: status >= 400 ? codeOf(payload) : undefined,
    })
    return payload
  })

  fastify.addHook('onClose', async () => { await log.close() })
}, { name: 'pgkeep-audit' })
