import t from 'tap'
import { loadConfig } from '../../server/config.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { auditLines, setupApp } from './helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('trust_proxy_app')

const trustProxyOf = (value: string) => loadConfig({ DATABASE_URL: 'postgres://app@127.0.0.1:1/app', PGKEEP_TRUST_PROXY: value }).trustProxy

t.test('PGKEEP_TRUST_PROXY reads a hop count or a list of addresses and CIDRs; unset or 0 trusts nobody', async t => {
  t.equal(trustProxyOf('1'), 1)
  t.equal(trustProxyOf(' 2 '), 2)
  t.equal(trustProxyOf('0'), undefined)
  t.equal(trustProxyOf(''), undefined)
  t.same(trustProxyOf('10.0.0.5, 10.1.0.0/16,::1,fd00::/8,loopback'), ['10.0.0.5', '10.1.0.0/16', '::1', 'fd00::/8', 'loopback'])
})

t.test('a bad PGKEEP_TRUST_PROXY is one CONFIG_INVALID line naming it and the bad entry', async t => {
  for (const [value, bad] of [['true', 'true'], ['10.0.0.5, proxy.example', 'proxy.example'], ['10.0.0.0/33', '10.0.0.0/33'], ['-1', '-1'], ['10.0.0.1/8/2', '10.0.0.1/8/2'], ['99', '99']]) {
    t.throws(() => trustProxyOf(value), { code: 'CONFIG_INVALID', message: new RegExp(`^invalid configuration: PGKEEP_TRUST_PROXY: .*${bad.replace(/[.*/]/g, '\\$&')}[^\\n]*$`) }, value)
  }
})

const guess = (app: Awaited<ReturnType<typeof setupApp>>['app'], username: string, from: string, forwardedFor: string) =>
  app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password: 'a wrong guess' }, remoteAddress: from, headers: { 'x-forwarded-for': forwardedFor } })

t.test('one trusted hop: the client IP is what the proxy appended; a forged X-Forwarded-For buys no fresh budget and is not audited', async t => {
  const { app } = await setupApp(t, cluster, 'trust_proxy_app', { rateLimits: { global: 100_000, login: 3, loginPerUser: 1000 } }, { trustProxy: 1 })
  const codes: number[] = []
  // the proxy at 10.0.0.2 appends the address it saw (203.0.113.7); everything left of it was written by the client
  for (let i = 0; i < 5; i++) codes.push((await guess(app, 'root', '10.0.0.2', `192.0.2.${i}, 203.0.113.7`)).statusCode)
  t.same(codes, [401, 401, 401, 429, 429])
  const ips = (await auditLines(app)).filter(l => l.action === 'login').map(l => l.ip)
  t.same([...new Set(ips)], ['203.0.113.7'])
})

t.test('a list of proxies: X-Forwarded-For counts only when the peer is one of them', async t => {
  const { app } = await setupApp(t, cluster, 'trust_proxy_app', {}, { trustProxy: ['10.0.0.0/24'] })
  await guess(app, 'root', '10.0.0.2', '192.0.2.1, 203.0.113.8')
  await guess(app, 'root', '198.51.100.4', '10.0.0.9')
  const ips = (await auditLines(app)).filter(l => l.action === 'login').map(l => l.ip)
  t.same(ips, ['203.0.113.8', '198.51.100.4'], 'through the proxy: the address it saw; from outside: the peer itself')
})
