import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// The unit file in docs/deployment.md, as an admin would copy it, checked by systemd's own verifier. Debian's
// systemd package gives systemd-analyze without a running systemd; it is installed here only when missing.
const docs = readFileSync(fileURLToPath(new URL('../../docs/deployment.md', import.meta.url)), 'utf8')
const unit = /`\/etc\/systemd\/system\/pgkeep\.service`[^\n]*\n\n```ini\n([\s\S]*?)```/.exec(docs)?.[1]

function analyzer (): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' })
  if (found.status === 0) return found.stdout.trim()
  if (process.getuid?.() !== 0) return undefined
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'systemd'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  const again = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' })
  return again.status === 0 ? again.stdout.trim() : undefined
}

const tool = analyzer()

t.test('docs/deployment.md has the pgkeep.service unit', async t => {
  t.ok(unit, 'an ini block after the unit\'s path')
  const lines = (unit ?? '').split('\n')
  for (const want of [/^User=pgkeep$/, /^EnvironmentFile=/, /^Restart=on-failure$/, /^KillMode=mixed$/, /^ExecStart=\S*pgkeep serve$/]) {
    t.ok(lines.some(l => want.test(l)), String(want))
  }
  const stop = Number(/^TimeoutStopSec=(\d+)s$/m.exec(unit ?? '')?.[1])
  t.ok(stop > 10, `TimeoutStopSec (${stop} s) is above the default PGKEEP_SHUTDOWN_GRACE_SECONDS (10 s)`)
})

t.test('systemd-analyze verify finds nothing wrong with it', { skip: tool ? false : 'systemd-analyze is missing and cannot be installed (not root, or no apt): install Debian\'s systemd package' }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-systemd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // verify checks that ExecStart's program exists: stand in for the installed pgkeep, the unit otherwise as documented
  const bin = join(dir, 'pgkeep')
  writeFileSync(bin, '#!/bin/sh\nexit 0\n')
  chmodSync(bin, 0o755)
  writeFileSync(join(dir, 'pgkeep.service'), (unit ?? '').replace(/^ExecStart=\S+/m, `ExecStart=${bin}`))
  const r = spawnSync(tool!, ['verify', join(dir, 'pgkeep.service')], { encoding: 'utf8', cwd: dir })
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stderr.trim(), '', 'no warnings either')
})
