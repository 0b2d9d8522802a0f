import { api, onUnauthorized, type Role, type User } from './api.ts'
import { router } from './router.svelte.ts'

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 }

/** Who is logged in, and what the UI may offer them (the server refuses the rest anyway). */
class Session {
  user = $state<User | null>(null)
  checked = $state(false)

  constructor () {
    onUnauthorized(() => this.expired())
  }

  expired (): void {
    // forget the user first: the login page sends anyone still "logged in" straight back
    this.user = null
    router.toLogin()
  }

  can (role: Role): boolean {
    return this.user !== null && RANK[this.user.role] >= RANK[role]
  }

  async load (): Promise<void> {
    try {
      this.user = await api.me()
    } catch {
      this.user = null
    } finally {
      this.checked = true
    }
  }

  async login (username: string, password: string): Promise<void> {
    const { user } = await api.login(username, password)
    this.user = user
    this.checked = true
  }

  async logout (): Promise<void> {
    try { await api.logout() } finally { this.user = null }
  }
}

export const session = new Session()
