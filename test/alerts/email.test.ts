import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { SMTPServer } from 'smtp-server'
import type { ChannelConfig } from '../../server/config-notifications.ts'
import { Notifier } from '../../server/alerts/notifier.ts'
import { failedBackup } from './fixtures.ts'

const PASSWORD = 'smtp-Secr3t-pw'

interface Mail { from: string, to: string[], raw: string, user?: string }

/** An SMTP server on loopback (smtp-server, the library nodemailer's authors ship): plain, AUTH PLAIN/LOGIN allowed, mails kept. */
async function startSmtp (t: Test, opts: { starttls?: boolean } = {}) {
  const mails: Mail[] = []
  const logins: string[] = []
  const waiters: ((m: Mail) => void)[] = []
  const server = new SMTPServer({
    disabledCommands: opts.starttls ? [] : ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth (auth, _session, cb) {
      logins.push(auth.username ?? '')
      if (auth.username === 'pgkeep' && auth.password === PASSWORD) cb(null, { user: auth.username })
      else cb(Object.assign(new Error('Authentication failed'), { responseCode: 535 }))
    },
    onData (stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const mail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map(r => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: session.user as string | undefined,
        }
        mails.push(mail)
        cb()
        waiters.shift()?.(mail)
      })
    },
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const port = (server.server.address() as AddressInfo).port
  return {
    port,
    mails,
    logins,
    next: async () => mails.length > 0 ? mails.shift()! : await new Promise<Mail>(resolve => waiters.push(m => { mails.shift(); resolve(m) })),
  }
}

/** The body of a quoted-printable mail part, as a reader sees it. */
function decodeBody (raw: string): string {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4)
  return Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8').replace(/\r\n/g, '\n')
}

function header (raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ')
  return new RegExp(`^${name}: (.*)$`, 'mi').exec(head)?.[1]
}

function emailChannel (port: number, extra: Partial<Extract<ChannelConfig, { type: 'email' }>> = {}): ChannelConfig {
  return {
    name: 'ops-mail', type: 'email', events: ['backup.failed'], timeoutMs: 5000,
    host: '127.0.0.1', port, tls: 'none', username: 'pgkeep', password: PASSWORD,
    from: 'pgkeep <pgkeep@db1.example>', to: ['ops@example.com', 'dba@example.com'], subjectPrefix: '[pgkeep]',
    ...extra,
  }
}

t.test('a failed backup arrives as a mail with a subject and a plain-text body, after logging in', async t => {
  const smtp = await startSmtp(t)
  const notifier = new Notifier([emailChannel(smtp.port)])
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'backup.failed', backup: failedBackup })
  const mail = await smtp.next()
  t.equal(mail.user, 'pgkeep', 'authenticated')
  t.equal(mail.from, 'pgkeep@db1.example')
  t.same(mail.to, ['ops@example.com', 'dba@example.com'])
  t.equal(header(mail.raw, 'Subject'), '[pgkeep] Backup failed: default/app')
  t.equal(header(mail.raw, 'X-Pgkeep-Event'), 'backup.failed')
  t.match(header(mail.raw, 'Content-Type'), /^text\/plain; charset=utf-8/)
  const body = decodeBody(mail.raw)
  t.match(body, /^pgkeep backup default-app-20260101T000000Z-abc\.dump of default\/app failed \(PG_AUTH_FAILED: password authentication failed for user "postgres"\)\n/)
  t.match(body, /\nTarget: default\/app\nBackup: default-app-20260101T000000Z-abc\.dump\nError: PG_AUTH_FAILED: /)
  t.match(body, /\n-- \npgkeep · backup\.failed\n$/)
  t.same(notifier.list(), [{ name: 'ops-mail', type: 'email', events: ['backup.failed'], destination: `ops@example.com, dba@example.com via 127.0.0.1:${smtp.port}` }])
  t.notMatch(JSON.stringify(notifier.list()), PASSWORD)
})

t.test('starttls (the default) refuses a server that cannot upgrade: the password is never sent in clear', async t => {
  const smtp = await startSmtp(t)
  const notifier = new Notifier([emailChannel(smtp.port, { tls: 'starttls' })])
  t.teardown(() => notifier.close())
  const result = await notifier.test('ops-mail')
  t.equal(result.ok, false)
  t.match(result.error, /STARTTLS|TLS/i)
  t.same(smtp.logins, [], 'no login was attempted')
  t.equal(smtp.mails.length, 0)
})

t.test('a wrong password is reported, not retried, and not repeated', async t => {
  const smtp = await startSmtp(t)
  const notifier = new Notifier([emailChannel(smtp.port, { password: 'wrong-Pa55' })], { baseDelayMs: 5 })
  t.teardown(() => notifier.close())
  const gaveUp = new Promise<Record<string, unknown>>(resolve => notifier.once('gave-up', resolve))
  notifier.notify({ event: 'backup.failed', backup: failedBackup })
  const outcome = await gaveUp
  t.equal(outcome.attempts, 1)
  t.match(outcome.reason, /535/)
  t.notMatch(String(outcome.reason), /wrong-Pa55/)
  t.same(smtp.logins, ['pgkeep'])
})

t.test('a server that accepts the connection and never greets is cut at the channel timeout', async t => {
  const sockets: Socket[] = []
  const silent = createServer(s => { sockets.push(s) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const notifier = new Notifier([emailChannel((silent.address() as AddressInfo).port, { timeoutMs: 300 })])
  t.teardown(() => notifier.close())
  const result = await notifier.test('ops-mail')
  t.equal(result.ok, false)
  t.match(result.error, /timed out|timeout/i)
})

t.test('the test message reaches the mailbox', async t => {
  const smtp = await startSmtp(t)
  const notifier = new Notifier([emailChannel(smtp.port)])
  t.teardown(() => notifier.close())
  t.match(await notifier.test('ops-mail'), { name: 'ops-mail', type: 'email', ok: true })
  const mail = await smtp.next()
  t.equal(header(mail.raw, 'Subject'), '[pgkeep] Test message')
  t.match(decodeBody(mail.raw), /^pgkeep test message for channel ops-mail: notifications reach this destination\n/)
})
