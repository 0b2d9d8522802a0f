import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig } from '../server/config.ts'
import { isAgeRecipient } from '../server/config-encryption.ts'
import { newAgeKey, type AgeKey } from './helpers/age-keys.ts'

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-config-age-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const newKey = (name: string): AgeKey => newAgeKey(dir, name)
const alice = newKey('alice')
const bob = newKey('bob')

/** loadConfig with `env` and, when given, a config file holding `file` (in `dir`, so relative paths resolve there). */
function load (env: Record<string, string>, file?: unknown): ReturnType<typeof loadConfig> {
  const full: Record<string, string> = { PGKEEP_BACKUP_DIR: dir, ...env }
  if (file !== undefined) {
    writeFileSync(join(dir, 'pgkeep.json'), JSON.stringify(file))
    full.PGKEEP_CONFIG = join(dir, 'pgkeep.json')
  }
  return loadConfig(full)
}

function refusal (t: Test, env: Record<string, string>, file?: unknown): string {
  try {
    load(env, file)
  } catch (err) {
    const e = err as { code?: string, message: string }
    t.equal(e.code, 'CONFIG_INVALID')
    t.notMatch(e.message, /\n/, 'one line')
    for (const key of [alice, bob]) t.notMatch(e.message, key.secret.slice(16), 'no private key in the message')
    return e.message
  }
  t.fail('the configuration was accepted')
  return ''
}

t.test('no age settings: no encryption block', async t => {
  t.equal(load({}).encryption, undefined)
})

t.test('PGKEEP_AGE_RECIPIENTS takes comma-separated age1 keys; the identity file is a path', async t => {
  const c = load({ PGKEEP_AGE_RECIPIENTS: ` ${alice.recipient}, ${bob.recipient},`, PGKEEP_AGE_IDENTITY_FILE: alice.identity })
  t.same(c.encryption, { recipients: [alice.recipient, bob.recipient], identityFile: alice.identity })
  t.same(load({ PGKEEP_AGE_RECIPIENTS: alice.recipient }).encryption, { recipients: [alice.recipient], identityFile: undefined })
  t.same(load({ PGKEEP_AGE_IDENTITY_FILE: alice.identity }).encryption, { recipients: [], identityFile: alice.identity },
    'an identity alone still reads older encrypted backups')
})

t.test('the config file names recipients, a recipients file (age -R format) and an identity file, relative to itself', async t => {
  writeFileSync(join(dir, 'recipients.txt'), `# the team's offline key\n${bob.recipient}\n\n  # rotated in 2026\n${alice.recipient}\n`)
  const c = load({}, { encryption: { recipients: [alice.recipient], recipientsFile: 'recipients.txt', identityFile: 'bob.txt' } })
  t.same(c.encryption, { recipients: [alice.recipient, bob.recipient], identityFile: bob.identity }, 'deduplicated, in order')
  const env = load({ PGKEEP_AGE_RECIPIENTS: bob.recipient, PGKEEP_AGE_IDENTITY_FILE: alice.identity }, { encryption: { recipients: [alice.recipient], identityFile: 'bob.txt' } })
  t.same(env.encryption, { recipients: [bob.recipient], identityFile: alice.identity }, 'the environment wins')
})

t.test('a malformed recipient is refused at start-up, naming where it is', async t => {
  const typo = alice.recipient.slice(0, -1) + (alice.recipient.endsWith('q') ? 'p' : 'q')
  t.notOk(isAgeRecipient(typo), 'a one-character typo breaks the bech32 checksum')
  t.ok(isAgeRecipient(alice.recipient))
  t.equal(refusal(t, { PGKEEP_AGE_RECIPIENTS: `${alice.recipient},${typo}` }),
    `invalid configuration: PGKEEP_AGE_RECIPIENTS: entry 2 "${typo}" is not a valid age public key (age1 followed by 58 characters, as age-keygen prints it)`)
  t.equal(refusal(t, { PGKEEP_AGE_RECIPIENTS: 'bad' }),
    'invalid configuration: PGKEEP_AGE_RECIPIENTS: entry 1 is not an age public key (age1 followed by 58 characters, as age-keygen prints it)')
  t.equal(refusal(t, { PGKEEP_AGE_RECIPIENTS: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK user@host' }),
    'invalid configuration: PGKEEP_AGE_RECIPIENTS: entry 1 is an SSH key; pgkeep takes only native age keys (age1..., from age-keygen)')
  t.equal(refusal(t, {}, { encryption: { recipients: [alice.recipient.slice(0, 20)] } }),
    `invalid configuration: encryption.recipients[0]: the entry "${alice.recipient.slice(0, 20)}" is not a valid age public key (age1 followed by 58 characters, as age-keygen prints it)`)
  t.equal(refusal(t, {}, { encryption: { recipients: 'age1x' } }), 'invalid configuration: encryption.recipients: must be an array')
  t.equal(refusal(t, {}, { encryption: { recipient: [] } }), 'invalid configuration: encryption: unknown field "recipient"')
})

t.test('a private key given where a public key belongs is refused without echoing it', async t => {
  t.equal(refusal(t, { PGKEEP_AGE_RECIPIENTS: alice.secret }),
    'invalid configuration: PGKEEP_AGE_RECIPIENTS: entry 1 is a private key (AGE-SECRET-KEY-1...), not a public key: give the age1... line that age-keygen -y prints, and keep the private key off this host')
  writeFileSync(join(dir, 'oops.txt'), readFileSync(alice.identity))
  t.match(refusal(t, {}, { encryption: { recipientsFile: 'oops.txt' } }),
    `invalid configuration: encryption.recipientsFile: ${join(dir, 'oops.txt')} line 3 is a private key`)
})

t.test('an unreadable or empty recipients file is refused', async t => {
  t.equal(refusal(t, {}, { encryption: { recipientsFile: 'missing.txt' } }),
    `invalid configuration: encryption.recipientsFile: cannot read ${join(dir, 'missing.txt')} (ENOENT)`)
  writeFileSync(join(dir, 'empty.txt'), '# nobody yet\n\n')
  t.equal(refusal(t, {}, { encryption: { recipientsFile: 'empty.txt' } }),
    `invalid configuration: encryption.recipientsFile: ${join(dir, 'empty.txt')} holds no recipients (one age1... public key per line)`)
})

t.test('an identity file that is missing, or readable by group or others, is refused like ssh refuses a private key', async t => {
  const missing = join(dir, 'no-such-key.txt')
  t.equal(refusal(t, { PGKEEP_AGE_IDENTITY_FILE: missing }),
    `invalid configuration: PGKEEP_AGE_IDENTITY_FILE: ${missing} does not exist or cannot be reached (ENOENT)`)
  t.equal(refusal(t, { PGKEEP_AGE_IDENTITY_FILE: dir }), `invalid configuration: PGKEEP_AGE_IDENTITY_FILE: ${dir} is not a file`)
  const open = join(dir, 'open.txt')
  writeFileSync(open, readFileSync(alice.identity))
  chmodSync(open, 0o644)
  t.equal(refusal(t, { PGKEEP_AGE_IDENTITY_FILE: open }),
    `invalid configuration: PGKEEP_AGE_IDENTITY_FILE: ${open} is accessible by group or others (mode 0644); a private key must be readable by its owner only: chmod 600 ${open}`)
  chmodSync(open, 0o640)
  t.match(refusal(t, {}, { encryption: { identityFile: 'open.txt' } }), /^invalid configuration: encryption\.identityFile: .* \(mode 0640\)/)
  chmodSync(open, 0o400)
  t.equal(load({ PGKEEP_AGE_IDENTITY_FILE: open }).encryption?.identityFile, open, '0400 is fine')
})
