import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuditOutcome } from '../../../../schemas/audit.ts'
import { AuditLog } from '../../../audit/audit-log.ts'

export interface AuditDetails { backupId?: string, subject?: string, outcome: AuditOutcome, code?: string, user?: string }

declare module 'fastify' {
  interface FastifyInstance {
    auditLog: AuditLog
    /** Appends one audit line for this request's caller. */
    audit (request: FastifyRequest, action: string, details: AuditDetails): Promise<void>
  }
  interface FastifyRequest {
    /** set by handlers when the audited backup id is not in the URL (create), or the user is not authenticated (login) */
    auditBackupId?: string
    auditUser?: string
    /** set by handlers whose entry names what was acted upon beyond the backup (the database a restore writes) */
    auditSubject?: string
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
export default fp<{ backupDir: string }>(async (fastify, opts) => {
  const log = new AuditLog(opts.backupDir)
  fastify.decorate('auditLog', log)
  fastify.decorateRequest('auditBackupId', undefined)
  fastify.decorateRequest('auditUser', undefined)
  fastify.decorateRequest('auditSubject', undefined)

  fastify.decorate('audit', async (request: FastifyRequest, action: string, details: AuditDetails) => {
    await log.append({
      user: details.user ?? request.principal?.username ?? request.auditUser ?? 'anonymous',
      role: request.principal?.role,
      ip: request.ip,
      action,
      backupId: details.backupId,
      subject: details.subject,
      outcome: details.outcome,
      code: details.code,
    })
  })

  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const action = request.routeOptions.config?.audit
    if (!action) return payload
    const params = request.params as { id?: string } | undefined
    const status = reply.statusCode
    await fastify.audit(request, action, {
      backupId: request.auditBackupId ?? (params?.id && /^[0-9a-f-]{36}$/.test(params.id) ? params.id : undefined),
      subject: request.auditSubject,
      outcome: outcomeOf(status),
      code: status >= 400 ? codeOf(payload) : undefined,
    })
    return payload
  })

  fastify.addHook('onClose', async () => { await log.close() })
}, { name: 'pgkeep-audit' })
