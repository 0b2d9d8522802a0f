import type { FastifySchema } from 'fastify'
import { ErrorReply } from '../../schemas/errors.ts'

/**
 * Every operation's operationId and summary, in one table, so generated clients get stable method names
 * (`client.listBackups`) and the linter (redocly, recommended rules; test/http/openapi.test.ts) passes. Keyed by
 * method and URL as fastify sees them (trailing slash dropped). A route may say its own in `schema.operationId`
 * / `schema.summary`; one in neither place gets a name made from its method and path, so a new route never
 * breaks the document (add it here for a better name).
 */
export const OPERATIONS: Record<string, { operationId: string, summary: string }> = {
  'POST /api/auth/login': { operationId: 'login', summary: 'Log in: a session cookie and token' },
  'POST /api/auth/logout': { operationId: 'logout', summary: 'Log out: revoke this session' },
  'GET /api/auth/me': { operationId: 'getCurrentUser', summary: 'The logged-in user and role' },
  'POST /api/backup/create': { operationId: 'createBackup', summary: 'Start a backup (queued)' },
  'GET /api/backup/list': { operationId: 'listBackups', summary: 'List backups: filter, sort, paginate' },
  'GET /api/backup/status/:id': { operationId: 'getBackupStatus', summary: 'A backup and its live progress' },
  'GET /api/backup/resolve/:ref': { operationId: 'resolveBackup', summary: 'Find a backup by ID prefix, name or latest[:TARGET]' },
  'POST /api/backup/:id/cancel': { operationId: 'cancelBackup', summary: 'Cancel a queued or running backup' },
  'POST /api/backup/:id/validate': { operationId: 'validateBackup', summary: 'Re-read a backup fully and check it' },
  'POST /api/backup/:id/pin': { operationId: 'pinBackup', summary: 'Pin or unpin a backup (pinned: never removed by cleanup)' },
  'DELETE /api/backup/:id': { operationId: 'deleteBackup', summary: 'Delete a backup' },
  'POST /api/backup/cleanup': { operationId: 'cleanupBackups', summary: 'Apply the retention policy, or preview it (dryRun)' },
  'POST /api/backup/:id/restore': { operationId: 'restoreBackup', summary: 'Restore a completed backup into a database' },
  'GET /api/backup/download/:id': { operationId: 'downloadBackup', summary: 'Download a completed backup (Range, ETag)' },
  'GET /api/restore/:id': { operationId: 'getRestore', summary: 'A restore and its progress' },
  'POST /api/restore/:id/cancel': { operationId: 'cancelRestore', summary: 'Cancel a running restore' },
  'GET /api/schedules': { operationId: 'listSchedules', summary: 'List schedules' },
  'POST /api/schedules': { operationId: 'createSchedule', summary: 'Create a schedule' },
  'GET /api/schedules/:name': { operationId: 'getSchedule', summary: 'A schedule' },
  'PATCH /api/schedules/:name': { operationId: 'updateSchedule', summary: 'Change a schedule' },
  'DELETE /api/schedules/:name': { operationId: 'deleteSchedule', summary: 'Delete a schedule' },
  'GET /api/audit': { operationId: 'listAuditEntries', summary: 'The audit log, newest first' },
  'GET /api/health': { operationId: 'getHealth', summary: 'Liveness' },
  'GET /api/health/ready': { operationId: 'getReadiness', summary: 'Readiness: targets, pg_dump, backups dir, free space' },
  'GET /api/targets': { operationId: 'listTargets', summary: 'The configured targets (never a password)' },
}

/** `GET /api/backup/:id/cancel` -> `getBackupByIdCancel`: unique and stable, if not pretty. */
function derivedOperationId (method: string, url: string): string {
  const words = url.split('/').filter(s => s !== '' && s !== 'api').map(s => s.startsWith(':') ? `by-${s.slice(1)}` : s)
  return [method.toLowerCase(), ...words.flatMap(w => w.split(/[-_.]/))].map((w, i) => i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1)).join('')
}

type RouteSchema = FastifySchema & { operationId?: string, summary?: string }

/**
 * @fastify/swagger's per-route transform: no trailing slash on a path (`/api/audit/` is `/api/audit`), an
 * operationId and a summary on every operation, and a 4XX reply (the error shape) on an operation that declares
 * none. Only the document changes; the routes validate and serialise as declared.
 */
export function describeOperation ({ schema, url, route }: { schema: RouteSchema | undefined, url: string, route: { method: string | string[] } }): { schema: RouteSchema, url: string } {
  const path = url.length > 1 ? url.replace(/\/+$/, '') : url
  const method = Array.isArray(route.method) ? route.method[0] : route.method
  const known = OPERATIONS[`${method} ${path}`]
  const response = (schema?.response ?? {}) as Record<string, unknown>
  const has4xx = Object.keys(response).some(code => /^4(\d\d|XX)$/i.test(code))
  return {
    url: path,
    schema: {
      ...schema,
      operationId: schema?.operationId ?? known?.operationId ?? derivedOperationId(method, path),
      summary: schema?.summary ?? known?.summary ?? `${method} ${path}`,
      ...(has4xx || schema?.response === undefined ? {} : { response: { ...response, '4XX': ErrorReply } }),
    },
  }
}
