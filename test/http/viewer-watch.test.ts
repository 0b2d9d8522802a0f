import { EventEmitter } from 'node:events'
import t from 'tap'
import type { Role } from '../../schemas/auth.ts'
import { CredentialRechecks, SESSION_ENDED, watchViewer, type WatchedSocket } from '../../server/http/viewer-watch.ts'

class Socket extends EventEmitter implements WatchedSocket {
  closedWith?: number
  ping (): void {}
  terminate (): void {}
  close (code: number): void {
    this.closedWith = code
    this.emit('close')
  }
}

t.test('viewers sharing a credential share one check per round; a refused one closes only its own sockets', async t => {
  const rechecks = new CredentialRechecks(3_600_000)
  t.teardown(() => rechecks.stop())
  const checks: Record<string, number> = { 'token-a': 0, 'token-b': 0 }
  let refuseB = false
  const roles: Role[] = []
  const open = (credential: 'token-a' | 'token-b'): Socket => {
    const socket = new Socket()
    watchViewer(socket, {
      heartbeatMs: 3_600_000,
      rechecks,
      credential,
      recheck: async () => {
        checks[credential]++
        if (credential === 'token-b' && refuseB) throw new Error('revoked')
        return 'viewer'
      },
      onRole: role => { roles.push(role) },
    })
    return socket
  }
  const a = Array.from({ length: 500 }, () => open('token-a'))
  const b = Array.from({ length: 3 }, () => open('token-b'))

  rechecks.checkAll()
  await new Promise(resolve => setImmediate(resolve))
  t.same(checks, { 'token-a': 1, 'token-b': 1 }, 'one check per distinct credential, not one per socket')
  t.equal(roles.length, 503, 'every socket heard its role')

  refuseB = true
  rechecks.checkAll()
  await new Promise(resolve => setImmediate(resolve))
  t.same(checks, { 'token-a': 2, 'token-b': 2 })
  t.ok(b.every(s => s.closedWith === SESSION_ENDED), 'the refused credential\'s sockets are closed with 1008')
  t.ok(a.every(s => s.closedWith === undefined), 'the others stay open')

  rechecks.checkAll()
  await new Promise(resolve => setImmediate(resolve))
  t.same(checks, { 'token-a': 3, 'token-b': 2 }, 'closed sockets left the rounds')
})
