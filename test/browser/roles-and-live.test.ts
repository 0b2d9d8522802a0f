import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startAdminStack, ADMIN, VIEWER } from './helpers/stack.ts'
import { openBrowser, login, recordAttribute, recorded } from './helpers/browser.ts'

// small data: nothing here needs a long dump except the one a viewer watches, which is cancelled
const { stack, admin, session: adminSession, page } = await startAdminStack(t, { database: 'browser_live', tables: 4, mbPerTable: 3 })

/** A clean backups page: no half-filled form left over from the previous test. */
async function freshBackupsPage (): Promise<void> {
  await page.goto('/dashboard/backup')
  await page.getByRole('button', { name: 'Start backup' }).waitFor()
  await page.locator('[data-state="online"]').waitFor()
}

t.test('a viewer sees backups and live jobs but no create, cancel, validate, restore, delete or download controls', async t => {
  const done = await admin.create({ compression: 'none' })
  t.equal(await admin.waitTerminal(done.id), 'completed')

  const viewer = await openBrowser(stack.url)
  t.teardown(viewer.close)
  const { page } = viewer
  await login(page, VIEWER.username, VIEWER.password)
  await page.locator(`tr[data-backup-id="${done.id}"][data-status="completed"]`).waitFor()
  await page.locator('[data-state="online"]').waitFor()
  // started once the viewer watches, so its card arrives through the live feed and is seen running
  const running = await admin.create({ compression: 'gzip', level: 9 })
  await page.locator(`article[data-backup-id="${running.id}"][data-status="running"]`).waitFor()

  for (const name of ['Start backup', 'Cancel', 'Validate', 'Restore', 'Delete']) {
    t.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button`)
  }
  t.equal(await page.getByRole('link', { name: 'Download' }).count(), 0, 'no Download link')
  t.equal(await page.getByRole('link', { name: 'Audit log' }).count(), 0, 'no admin pages in the navigation')

  const refused = await page.request.post(`/api/backup/${running.id}/cancel`, { data: {} })
  t.equal(refused.status(), 403, 'and the server refuses a viewer who tries anyway')
  // tidy up; if the dump beat us to the end, the card shows that instead
  await admin.call('POST', `/api/backup/${running.id}/cancel`, {})
  await page.locator(`article[data-backup-id="${running.id}"]:is([data-status="cancelled"], [data-status="completed"])`).waitFor({ timeout: 30_000 })
})

t.test('a wrong form value shows an error on its field and creates nothing', async t => {
  await freshBackupsPage()
  const registry = join(stack.backupDir, 'registry.json')
  const before = readFileSync(registry, 'utf8')
  const total = await admin.total()
  let creates = 0
  const count = (r: { url (): string }): void => { if (r.url().endsWith('/api/backup/create')) creates++ }
  page.on('request', count)
  t.teardown(() => { page.off('request', count) })

  await page.getByLabel('Name').fill('-starts with a dash!')
  await page.getByLabel('Compression').selectOption('gzip')
  await page.getByLabel('Level').fill('12')
  await page.getByRole('button', { name: 'Start backup' }).click()

  const name = page.getByLabel('Name')
  t.equal(await name.getAttribute('aria-invalid'), 'true', 'the name field is marked invalid')
  t.match(await page.locator('#cb-name-error').innerText(), /letters, digits/, 'with a message saying what is allowed')
  t.match(await page.locator('#cb-level-error').innerText(), /gzip level must be a whole number from 1 to 9/)
  t.ok(await name.evaluate(el => el === document.activeElement), 'focus moves to the first invalid field')
  t.equal(creates, 0, 'no request was sent')
  t.equal(readFileSync(registry, 'utf8'), before, 'the registry is unchanged')
  t.equal(await admin.total(), total, 'the list is unchanged')
})

t.test('the live connection comes back after a server restart and updates flow again', async t => {
  await freshBackupsPage()
  await recordAttribute(page, 'conn', '[data-state]', 'data-state')

  await stack.restart()
  await page.waitForFunction(() => {
    const seen = (window as unknown as { conn: string[] }).conn
    return seen.includes('offline') && seen.at(-1) === 'online'
  }, undefined, { timeout: 30_000 })
  const states = await recorded(page, 'conn')
  t.ok(states.indexOf('offline') < states.lastIndexOf('online'), `indicator went offline then online (${states.join(' → ')})`)

  const backup = await admin.create({ compression: 'none' })
  await page.locator(`article[data-backup-id="${backup.id}"][data-status="completed"]`).waitFor({ timeout: 60_000 })
  await page.locator(`tr[data-backup-id="${backup.id}"]`).waitFor()
  t.pass('a backup started after the restart appears and completes without a reload')
})

t.test('a failed backup is never silent: the card and a toast show its error code and message', async t => {
  await freshBackupsPage()
  await page.getByText('More options').click()
  await page.getByLabel('Schemas').fill('no_such_schema')
  await page.getByRole('button', { name: 'Start backup' }).click()

  const card = page.locator('article[data-status="failed"]')
  await card.waitFor({ timeout: 60_000 })
  const error = await card.locator('dd.error').innerText()
  t.match(error, /^[A-Z_]+ \S/, `the card shows code and message (${error})`)
  const toast = page.locator('.toast[data-kind="error"]').filter({ hasText: 'failed' })
  await toast.waitFor()
  t.match(await toast.locator('.detail').innerText(), /^[A-Z_]+: \S/, 'the toast carries the code and message')
})

// last: it throws the admin browser's session away
t.test('an expired session goes to the login page and back to where the user was', async t => {
  await page.getByRole('link', { name: 'Storage' }).click()
  await page.getByRole('heading', { name: 'Storage', level: 1 }).waitFor()
  await page.locator('[data-state="online"]').waitFor()
  await adminSession.context.clearCookies()

  // the live feed says something changed; the page's next API call finds the session gone
  await admin.create({ compression: 'none' })
  await page.waitForURL(url => url.pathname === '/login')
  t.equal(new URL(page.url()).searchParams.get('next'), '/dashboard/storage', 'the page is remembered')
  await page.getByLabel('Username').fill(ADMIN.username)
  await page.getByLabel('Password').fill(ADMIN.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(url => url.pathname === '/dashboard/storage')
  await page.getByRole('heading', { name: 'Storage', level: 1 }).waitFor()
  t.pass('back on the storage page after signing in again')
})
