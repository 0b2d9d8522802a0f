/** The one module all HTTP goes through: typed from schemas/, same-origin cookie auth, 401 → login. */
import type { BackupReply, BackupWithProgress, CleanupRequest, CleanupResult, CreateBackupRequest, ListQuery, ListResult, RestoreRequest } from '../../../schemas/backup.ts'
import type { DeletedReply } from '../../../schemas/common.ts'
import type { ErrorReply } from '../../../schemas/errors.ts'
import type { Role, User, LoginReply, LogoutReply, TokenCreate, TokenCreated, TokenInfo, TokenList, UserCreate, UserList } from '../../../schemas/auth.ts'
import type { Overview } from '../../../schemas/overview.ts'
import type { AuditEntry, AuditPage } from '../../../schemas/audit.ts'
import type { Schedule, ScheduleCreate, ScheduleList, SchedulePatch } from '../../../schemas/schedule.ts'
import type { RestoreReply, RestoreState } from '../../../schemas/restore.ts'
import type { TargetList } from '../../../schemas/targets.ts'
import type { Drill, DrillList, DrillReply, DrillRequest } from '../../../schemas/drill.ts'
import type { DeliveryResult, NotificationChannelInfo, NotificationChannelList } from '../../../schemas/notifications.ts'
import type { SetReply } from '../../../schemas/sets.ts'
import { router } from './router.svelte.ts'

export type { DeliveryResult, NotificationChannelInfo }
export type { Role, User, AuditEntry, AuditPage, Schedule, ScheduleCreate, SchedulePatch, RestoreState, TokenInfo, TokenCreated, Overview, CleanupResult }
export class ApiError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor (reply: ErrorReply) {
    super(reply.message)
    this.statusCode = reply.statusCode
    this.code = reply.code
  }
}

let unauthorized: () => void = () => router.toLogin()
/** What a 401 outside the login call means: the session is gone (set by the session store). */
export function onUnauthorized (fn: () => void): void { unauthorized = fn }

async function request<T> (method: string, path: string, body?: unknown): Promise<T> {
  let res: Response
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError({ statusCode: 0, code: 'NETWORK', error: 'Network error', message: 'The server cannot be reached.' })
  }
  const text = await res.text()
  let data: unknown
  try { data = text ? JSON.parse(text) : undefined } catch { data = undefined }
  if (!res.ok) {
    // the login call answers 401 for bad credentials: that is a form error, not an expired session
    if (res.status === 401 && path !== '/api/auth/login' && path !== '/api/auth/me') unauthorized()
    const reply = (data ?? {}) as Partial<ErrorReply>
    throw new ApiError({
      statusCode: res.status,
      code: reply.code ?? `HTTP_${res.status}`,
      error: reply.error ?? res.statusText,
      message: reply.message ?? (text.slice(0, 200) || res.statusText),
    })
  }
  return data as T
}

function qs (params: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}

export const api = {
  login: (username: string, password: string) =>
    request<LoginReply>('POST', '/api/auth/login', { username, password }),
  logout: () => request<LogoutReply>('POST', '/api/auth/logout', {}),
  me: () => request<User>('GET', '/api/auth/me'),

  createBackup: (req: CreateBackupRequest) => request<BackupReply>('POST', '/api/backup/create', req),
  listBackups: (q: ListQuery) => request<ListResult>('GET', `/api/backup/list${qs(q as Record<string, string | number | undefined>)}`),
  backupStatus: (id: string) => request<BackupWithProgress>('GET', `/api/backup/status/${id}`),
  cancelBackup: (id: string) => request<BackupReply>('POST', `/api/backup/${id}/cancel`, {}),
  validateBackup: (id: string) => request<BackupReply>('POST', `/api/backup/${id}/validate`, {}).then(r => r.backup),
  deleteBackup: (id: string) => request<DeletedReply>('DELETE', `/api/backup/${id}`),
  restoreBackup: (id: string, req: RestoreRequest) => request<RestoreReply>('POST', `/api/backup/${id}/restore`, req),
  restoreState: (restoreId: string) => request<RestoreState>('GET', `/api/restore/${restoreId}`),
  cancelRestore: (restoreId: string) => request<RestoreState>('POST', `/api/restore/${restoreId}/cancel`, {}),
  downloadUrl: (id: string) => `/api/backup/download/${id}`,

  getSet: (id: string) => request<SetReply>('GET', `/api/sets/${id}`).then(r => r.set),
  cancelSet: (id: string) => request<SetReply>('POST', `/api/sets/${id}/cancel`, {}),
  pinSet: (id: string, pinned: boolean) => request<SetReply>('POST', `/api/sets/${id}/pin`, { pinned }),
  deleteSet: (id: string) => request<DeletedReply>('DELETE', `/api/sets/${id}`),

  listSchedules: () => request<ScheduleList>('GET', '/api/schedules').then(r => r.items),
  createSchedule: (s: ScheduleCreate) => request<Schedule>('POST', '/api/schedules', s),
  updateSchedule: (name: string, s: SchedulePatch) => request<Schedule>('PATCH', `/api/schedules/${encodeURIComponent(name)}`, s),
  deleteSchedule: (name: string) => request<DeletedReply>('DELETE', `/api/schedules/${encodeURIComponent(name)}`),

  listTargets: () => request<TargetList>('GET', '/api/targets').then(r => r.items),

  overview: () => request<Overview>('GET', '/api/overview'),
  pinBackup: (id: string, pinned: boolean) => request<BackupReply>('POST', `/api/backup/${id}/pin`, { pinned }).then(r => r.backup),
  cleanup: (req: CleanupRequest) => request<CleanupResult>('POST', '/api/backup/cleanup', req),

  listUsers: () => request<UserList>('GET', '/api/users').then(r => r.items),
  addUser: (u: UserCreate) => request<User>('POST', '/api/users', u),
  setUserRole: (username: string, role: Role) => request<User>('PUT', `/api/users/${encodeURIComponent(username)}/role`, { role }),
  resetPassword: (username: string, password: string) => request<User>('PUT', `/api/users/${encodeURIComponent(username)}/password`, { password }),
  removeUser: (username: string) => request<DeletedReply>('DELETE', `/api/users/${encodeURIComponent(username)}`),
  listTokens: () => request<TokenList>('GET', '/api/tokens').then(r => r.items),
  createToken: (t: TokenCreate) => request<TokenCreated>('POST', '/api/tokens', t),
  revokeToken: (id: string) => request<TokenInfo>('DELETE', `/api/tokens/${id}`),

  listAudit: (page: number, pageSize: number) => request<AuditPage>('GET', `/api/audit${qs({ page, pageSize })}`),

  listDrills: (limit = 100) => request<DrillList>('GET', `/api/drills${qs({ limit })}`).then(r => r.items),
  getDrill: (id: string) => request<Drill>('GET', `/api/drills/${id}`),
  startDrill: (req: DrillRequest) => request<DrillReply>('POST', '/api/drills', req).then(r => r.drill),
  cancelDrill: (id: string) => request<Drill>('POST', `/api/drills/${id}/cancel`, {}),
  listNotifications: () => request<NotificationChannelList>('GET', '/api/notifications').then(r => r.items),
  testNotification: (name: string) => request<DeliveryResult>('POST', `/api/notifications/${encodeURIComponent(name)}/test`, {}),
}
