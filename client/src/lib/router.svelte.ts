/** A tiny history-API router: the server serves index.html for every dashboard path. */
/** A new page adds its path here and its entry in BackupManager's page list. */
export const ROUTES = [
  '/login', '/dashboard', '/dashboard/backup', '/dashboard/schedules', '/dashboard/audit', '/dashboard/storage',
  '/dashboard/cleanup', '/dashboard/admin', '/dashboard/drills', '/dashboard/notifications',
] as const
export type Route = typeof ROUTES[number]
/** where a login lands and where unknown paths go: the overview answers "are my databases backed up?" */
export const HOME: Route = '/dashboard'

function normalise (path: string): Route {
  const trimmed = path.replace(/\/+$/, '')
  return (ROUTES as readonly string[]).includes(trimmed) ? trimmed as Route : HOME
}

class Router {
  path = $state<Route>(normalise(location.pathname))
  search = $state(location.search)

  constructor () {
    addEventListener('popstate', () => this.#sync())
    if (location.pathname !== this.path) history.replaceState(null, '', this.path + location.search)
  }

  #sync (): void {
    this.path = normalise(location.pathname)
    this.search = location.search
  }

  goto (url: string, replace = false): void {
    if (url === location.pathname + location.search) return
    if (replace) history.replaceState(null, '', url)
    else history.pushState(null, '', url)
    this.#sync()
  }

  param (name: string): string | null {
    return new URLSearchParams(this.search).get(name)
  }

  /** Sends the user to the login page, remembering where they were. */
  toLogin (): void {
    if (this.path === '/login') return
    const here = location.pathname + location.search
    this.goto(`/login?next=${encodeURIComponent(here)}`, true)
  }
}

export const router = new Router()
