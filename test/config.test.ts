import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig, staleAfterHoursOf } from '../server/config.ts'

const SECRET = 'Sup3r-secret'

/** loadConfig with a config file holding `file`; returns its one-line error (or fails the test). */
function refusal (t: Test, env: Record<string, string>, file?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const full: Record<string, string> = { PGKEEP_BACKUP_DIR: dir, ...env }
  if (file !== undefined) {
    writeFileSync(join(dir, 'pgkeep.json'), JSON.stringify(file))
    full.PGKEEP_CONFIG = join(dir, 'pgkeep.json')
  }
  try {
    loadConfig(full)
  } catch (err) {
    const e = err as { code?: string, message: string }
    t.equal(e.code, 'CONFIG_INVALID')
    t.notMatch(e.message, /\n/, 'one line')
    t.notMatch(e.message, SECRET, 'no password in the message')
    return e.message
  }
  t.fail('the configuration was accepted')
  return ''
}

t.test('a database URL that is not postgres:// is refused at start-up, naming the variable and never the password', async t => {
  t.equal(refusal(t, { DATABASE_URL: `mysql://app:${SECRET}@db/app` }),
    'invalid configuration: DATABASE_URL: "mysql:" is not a PostgreSQL URL; expected postgres://user@host:port/database')
  t.equal(refusal(t, { DATABASE_URL: `app:${SECRET}@db/app` }).startsWith('invalid configuration: DATABASE_URL: '), true)
  t.equal(refusal(t, { DATABASE_URL: 'db.example.com/app' }),
    'invalid configuration: DATABASE_URL: has no scheme; expected postgres://user@host:port/database')
  t.equal(refusal(t, { DATABASE_URL: `postgres://app:${SECRET}@db:99999/app` }),
    'invalid configuration: DATABASE_URL: is not a valid postgres:// URL (check the port and any %-escapes)')
  t.equal(refusal(t, {}, { targets: { main: { url: `mysql://app:${SECRET}@db/app` } } }),
    'invalid configuration: targets.main.url: "mysql:" is not a PostgreSQL URL; expected postgres://user@host:port/database')
  for (const ok of ['postgres://u@h:5433/d', 'postgresql://u@h/d', 'postgres://']) {
    t.equal(loadConfig({ DATABASE_URL: ok }).targets.default.database !== undefined, true, `${ok} is accepted`)
  }
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://u@db.example.com:5433/d' }).targets.default.host, 'db.example.com')
})

t.test('config file errors name the field as written and say what is wrong in plain words', async t => {
  const cases: [unknown, string][] = [
    [{ schedules: [{ name: 'a', cron: '0 * * * *' }, { name: 'b', cron: '0 * * * *', backup: { format: 'zip' } }] },
      'schedules[1].backup.format: must be one of "custom", "plain", "directory", "tar"'],
    [{ targets: { main: { port: 70000 } } }, 'targets.main.port: must be at most 65535'],
    [{ targets: { 'bad name': {} } }, 'targets."bad name": a target name must start with a letter or digit'],
    [{ concurrency: 1.5 }, 'concurrency: must be a whole number'],
    [{ retention: { keepLast: 0 } }, 'retention.keepLast: must be at least 1'],
    [{ retention: {} }, 'retention: the policy is empty: set keepLast'],
    [{ webhooks: ['ftp://hooks.example.com/x'] }, 'webhooks[0]: must be an http:// or https:// URL'],
    [{ schedules: [{ name: 'a' }] }, 'schedules[0]: is missing "cron"'],
    [{ bogus: 1 }, 'pgkeep.json: unknown field "bogus"'],
    [{ cleanupCron: '0 3 * *' }, 'cleanupCron: "0 3 * *" has 4 fields, expected 5'],
  ]
  for (const [file, expected] of cases) {
    const message = refusal(t, {}, file)
    t.ok(message.includes(expected), `${JSON.stringify(file)} -> ${message}`)
    t.notMatch(message, /\/\d+(\/|:)|must match|must be equal to constant|\^/, 'no JSON pointer or regular expression')
  }
})

t.test('every schedule of the config file is checked at start-up, as the API checks one', async t => {
  const base = { targets: { main: { url: 'postgres://u@h/d' }, reports: { url: 'postgres://u@h/r' } } }
  const schedules = (bad: Record<string, unknown>) => ({
    ...base,
    schedules: [{ name: 'ok', cron: '0 2 * * *' }, { name: 'ok2', cron: '0 3 * * *', backup: { target: 'reports' } }, { name: 'bad', ...bad }],
  })
  const cases: [Record<string, unknown>, string][] = [
    [{ cron: '*/5 * * *' }, 'invalid configuration: schedules[2].cron: "*/5 * * *" has 4 fields, expected 5 (minute hour day month weekday) or 6 (seconds first)'],
    [{ cron: '61 * * * *' }, 'invalid configuration: schedules[2].cron: "61 * * * *": invalid value for minute: 61'],
    [{ cron: '0 0 30 2 *' }, 'invalid configuration: schedules[2].cron: "0 0 30 2 *" never fires'],
    [{ cron: '0 2 * * *', timezone: 'Europe/Pariss' }, 'invalid configuration: schedules[2].timezone: unknown time zone "Europe/Pariss"'],
    [{ cron: '0 2 * * *', backup: { target: 'reprots' } }, 'invalid configuration: schedules[2].backup.target: unknown target "reprots"; configured: main, reports'],
    [{ cron: '0 2 * * *', backup: { compression: 'none', level: 3 } }, 'invalid configuration: schedules[2].backup.level: cannot be set when compression is none'],
    [{ cron: '0 2 * * *', backup: { compression: 'gzip', level: 19 } }, 'invalid configuration: schedules[2].backup.level: level for gzip must be between 1 and 9'],
    [{ cron: '0 2 * * *', backup: { jobs: 4 } }, 'invalid configuration: schedules[2].backup.jobs: parallel dumps need the directory format'],
    [{ cron: '0 2 * * *', retention: {} }, 'invalid configuration: schedules[2].retention: the policy is empty: set keepLast, maxAgeDays, keepDaily, keepWeekly or keepMonthly'],
    [{ cron: '0 2 * * *', name: 'ok' }, 'invalid configuration: schedules[2].name: "ok" is used by an earlier schedule'],
  ]
  for (const [bad, expected] of cases) t.equal(refusal(t, {}, schedules(bad)), expected)
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ok.json'), JSON.stringify(schedules({ cron: '0 4 * * * *', timezone: 'Europe/Paris', backup: { format: 'directory', jobs: 2 } })))
  t.equal(loadConfig({ PGKEEP_CONFIG: join(dir, 'ok.json') }).schedules.length, 3, 'valid schedules load')
})

t.test('storage: a directory or s3://BUCKET[/PREFIX], copies each their own, path style a boolean', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-config-storage-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const MiB = 1024 * 1024
  t.same(loadConfig({ PGKEEP_BACKUP_DIR: dir }).storage, { primary: dir, copies: [], forcePathStyle: false, partBytes: 8 * MiB, equalParts: false }, 'default: the backups dir')
  const config = loadConfig({
    PGKEEP_BACKUP_DIR: dir,
    PGKEEP_STORAGE: 's3://Backups.example/pgkeep/prod/',
    PGKEEP_STORAGE_COPIES: ` ${join(dir, 'copy')} , s3://offsite-bucket `,
    PGKEEP_S3_FORCE_PATH_STYLE: 'TRUE',
  })
  t.same(config.storage, { primary: 's3://Backups.example/pgkeep/prod', copies: [join(dir, 'copy'), 's3://offsite-bucket'], forcePathStyle: true, partBytes: 8 * MiB, equalParts: false })
  t.match(loadConfig({ PGKEEP_BACKUP_DIR: dir, PGKEEP_S3_PART_SIZE_MB: '64', PGKEEP_S3_EQUAL_PARTS: 'true' }).storage, { partBytes: 64 * MiB, equalParts: true }, 'Cloudflare R2: large equal parts')
  const file = { storage: 'relative/backups', copies: ['s3://offsite-bucket/x'], s3ForcePathStyle: true, s3PartSizeMB: 16, s3EqualParts: true }
  writeFileSync(join(dir, 'pgkeep.json'), JSON.stringify(file))
  t.same(loadConfig({ PGKEEP_BACKUP_DIR: dir, PGKEEP_CONFIG: join(dir, 'pgkeep.json') }).storage,
    { primary: join(dir, 'relative/backups'), copies: ['s3://offsite-bucket/x'], forcePathStyle: true, partBytes: 16 * MiB, equalParts: true }, 'file paths are relative to the file')

  t.match(refusal(t, { PGKEEP_STORAGE: 's3://' }), /^invalid configuration: PGKEEP_STORAGE: storage url s3:\/\/: the bucket name is empty$/)
  t.match(refusal(t, { PGKEEP_STORAGE: 's3://bucket/../x' }), /PGKEEP_STORAGE: .*may not contain \. or \.\. segments/)
  t.match(refusal(t, { PGKEEP_STORAGE: `s3://AKIA:${SECRET}@bucket/x` }), /PGKEEP_STORAGE: .*no credentials or port in the url/)
  t.match(refusal(t, { PGKEEP_STORAGE: 'ftp://host/dir' }), /PGKEEP_STORAGE: .*only s3:\/\/ and file:\/\/ urls/)
  t.match(refusal(t, {}, { copies: ['s3://ok-bucket', 'gs://nope'] }), /^invalid configuration: copies\[1\]: /)
  t.match(refusal(t, { PGKEEP_STORAGE: 's3://same-bucket', PGKEEP_STORAGE_COPIES: 's3://same-bucket' }), /PGKEEP_STORAGE_COPIES: s3:\/\/same-bucket is named twice/)
  t.match(refusal(t, { PGKEEP_S3_FORCE_PATH_STYLE: 'yes' }), /PGKEEP_S3_FORCE_PATH_STYLE: must be true or false/)
  t.match(refusal(t, { PGKEEP_S3_PART_SIZE_MB: '4' }), /PGKEEP_S3_PART_SIZE_MB: must be between 5 and 64/)
  t.match(refusal(t, { PGKEEP_S3_EQUAL_PARTS: 'sure' }), /PGKEEP_S3_EQUAL_PARTS: must be true or false/)
})

t.test('staleAfterHours: a global default of 26, a target may say its own (0 = never), negative refused', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgkeep.json')
  writeFileSync(file, JSON.stringify({ staleAfterHours: 48, targets: { a: { url: 'postgres://x@h/a', staleAfterHours: 0 }, b: { url: 'postgres://x@h/b' } } }))
  const config = loadConfig({ PGKEEP_BACKUP_DIR: dir, PGKEEP_CONFIG: file })
  t.equal(staleAfterHoursOf(config, 'a'), 0)
  t.equal(staleAfterHoursOf(config, 'b'), 48)
  t.equal(loadConfig({ PGKEEP_BACKUP_DIR: dir }).staleAfterHours, 26)
  t.match(refusal(t, {}, { staleAfterHours: -1 }), /^invalid configuration: staleAfterHours: /)
})

t.test('catalog: a postgres:// URL (env wins over the file), a password file kept out of the URL, bad ones refused', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.equal(loadConfig({ PGKEEP_BACKUP_DIR: dir }).catalog, undefined)
  writeFileSync(join(dir, 'catalog.pw'), `${SECRET}\n`)
  writeFileSync(join(dir, 'pgkeep.json'), JSON.stringify({ catalog: 'postgres://keeper@db.example:5433/pgkeep', catalogPasswordFile: 'catalog.pw' }))
  t.match(loadConfig({ PGKEEP_BACKUP_DIR: dir, PGKEEP_CONFIG: join(dir, 'pgkeep.json') }).catalog,
    { name: 'catalog', host: 'db.example', port: 5433, user: 'keeper', database: 'pgkeep', password: SECRET })
  t.match(loadConfig({ PGKEEP_BACKUP_DIR: dir, PGKEEP_CONFIG: join(dir, 'pgkeep.json'), PGKEEP_CATALOG_URL: 'postgres://other@h2/cat' }).catalog,
    { host: 'h2', user: 'other', database: 'cat', password: SECRET })
  const bad = refusal(t, { PGKEEP_CATALOG_URL: `mysql://root:${SECRET}@h/db` })
  t.match(bad, /PGKEEP_CATALOG_URL: "mysql:" is not a PostgreSQL URL/)
  t.notMatch(bad, SECRET)
  t.match(refusal(t, { PGKEEP_CATALOG_URL: 'postgres://h/db', PGKEEP_CATALOG_PASSWORD_FILE: join(dir, 'missing') }), /PGKEEP_CATALOG_PASSWORD_FILE: cannot be read/)
})
