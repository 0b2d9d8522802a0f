import t from 'tap'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Backup } from '../../schemas/backup.ts'
import { startStack, ADMIN, ARTIFACTS } from './helpers/stack.ts'
import { openBrowser, login, recordAttribute, recorded, DESKTOP, PHONE } from './helpers/browser.ts'

const stack = await startStack({ database: 'browser_dashboard' })
t.teardown(stack.stop)
const session = await openBrowser(stack.url)
t.teardown(session.close)
const { page } = session
const pageErrors: string[] = []
page.on('pageerror', e => pageErrors.push(e.message))

/** Starts a backup through the form; zstd -19 makes the compressor pace the dump over several seconds. */
async function startSlowBackup (): Promise<string> {
  const before = new Set(await page.locator('article[data-backup-id]').evaluateAll(els => els.map(e => e.getAttribute('data-backup-id'))))
  await page.getByLabel('Compression').selectOption('gzip')
  await page.getByLabel('Level').fill('9')
  await page.getByRole('button', { name: 'Start backup' }).click()
  await page.waitForFunction(n => document.querySelectorAll('article[data-backup-id]').length > n, before.size)
  const ids = await page.locator('article[data-backup-id]').evaluateAll(els => els.map(e => e.getAttribute('data-backup-id') ?? ''))
  const id = ids.find(i => !before.has(i))
  if (!id) throw new Error('no new backup card appeared')
  return id
}

t.test('an admin logs in and lands on the backups page with a live connection', async t => {
  await login(page, ADMIN.username, ADMIN.password)
  t.equal(new URL(page.url()).pathname, '/dashboard/backup')
  await page.locator('[data-state="online"]').waitFor()
  t.ok(await page.getByRole('navigation', { name: 'Breadcrumb' }).isVisible(), 'breadcrumbs are shown')
  t.ok(await page.getByRole('button', { name: 'Start backup' }).isVisible(), 'an admin can create backups')
})

t.test('the targets panel names each target with its server version and says it is ready', async t => {
  const row = page.locator('.targets li[data-target="default"]')
  await row.locator('.badge').waitFor()
  t.match(await row.innerText(), /default[\s\S]*PostgreSQL 15\.\d+[\s\S]*ready/)
  t.equal(await row.getAttribute('data-ok'), 'true')
})

t.test('a running backup shows its percent rising at least three times, then turns completed in place', async t => {
  const id = await startSlowBackup()
  const card = page.locator(`article[data-backup-id="${id}"]`)
  await recordAttribute(page, 'percents', `article[data-backup-id="${id}"] .percent`, 'data-percent')
  await recordAttribute(page, 'statuses', `article[data-backup-id="${id}"]`, 'data-status')

  await page.waitForFunction(sel => Number(document.querySelector(sel)?.getAttribute('data-percent') || 0) >= 25, `article[data-backup-id="${id}"] .percent`)
  // one look (text and line boxes together) while the dump still runs, at phone width where space is tightest
  await page.setViewportSize(PHONE)
  const rate = await page.evaluate(sel => {
    const el = document.querySelector(sel)
    return el && { text: el.textContent ?? '', lines: el.getClientRects().length }
  }, `article[data-backup-id="${id}"] .rate`)
  await page.setViewportSize(DESKTOP)
  t.match(rate?.text, /^[\d.]+\u00a0(B|KiB|MiB|GiB)\/s$/, 'the rate is in IEC units, its number and unit bound')
  t.equal(rate?.lines, 1, 'a rate never wraps, even on a phone')
  await card.locator('details summary').click()
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-mid-dump-1280.png'), fullPage: true })
  await page.setViewportSize(PHONE)
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-mid-dump-390.png'), fullPage: true })
  await page.setViewportSize(DESKTOP)
  t.match(await card.locator('pre.log').innerText(), /pg_dump: /, 'the live log shows pg_dump lines')

  await page.locator(`article[data-backup-id="${id}"][data-status="completed"]`).waitFor({ timeout: 120_000 })
  const percents = (await recorded(page, 'percents')).filter(Boolean).map(Number)
  const rises = percents.filter((p, i) => i > 0 && p > percents[i - 1]).length
  t.ok(rises >= 3, `percent rose ${rises} times before completion (${percents.map(p => p.toFixed(1)).join(' → ')})`)
  t.same([...percents].sort((a, b) => a - b), percents, 'the percent never went backwards')
  t.ok(percents.every(p => p <= 100), 'never above 100 %')
  const statuses = await recorded(page, 'statuses')
  t.equal(statuses.at(-1), 'completed')
  t.ok(statuses.includes('running'), `went through running (${statuses.join(' → ')})`)

  const name = (await card.locator('header strong').innerText()).trim()
  await page.locator('.toast[data-kind="success"]').filter({ hasText: `Backup ${name} completed` }).waitFor()
  await page.locator(`tr[data-backup-id="${id}"][data-status="completed"]`).waitFor()
  t.equal(await page.locator('[data-instance]').count(), 0, 'a lone pgkeep names no instance, on the card or in the list')
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-completed-1280.png'), fullPage: true })
  await page.setViewportSize(PHONE)
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-completed-390.png'), fullPage: true })
  await page.setViewportSize(DESKTOP)
})

t.test('cancelling a running backup shows cancelled without a reload and leaves no file behind', async t => {
  await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true })
  const id = await startSlowBackup()
  const card = page.locator(`article[data-backup-id="${id}"]`)
  await page.waitForFunction(sel => Number(document.querySelector(sel)?.getAttribute('data-percent') || 0) > 0, `article[data-backup-id="${id}"] .percent`)
  const name = (await card.locator('header strong').innerText()).trim()

  await card.getByRole('button', { name: 'Cancel' }).click()
  const dialog = page.getByRole('dialog')
  await dialog.waitFor()
  t.match(await dialog.innerText(), name, 'the confirmation names the backup')
  await dialog.getByRole('button', { name: 'Cancel backup' }).click()

  await page.locator(`article[data-backup-id="${id}"][data-status="cancelled"]`).waitFor({ timeout: 30_000 })
  t.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'no page reload happened')
  await page.locator('.toast').filter({ hasText: `Backup ${name} cancelled` }).waitFor()
  const left = readdirSync(stack.backupDir).filter(f => f.startsWith(name.replace(/\.[^.]+$/, '')))
  t.same(left, [], 'no dump file or .partial is left in the backups dir')
})

t.test('downloading a completed backup gives bytes whose sha256 matches the API', async t => {
  const row = page.locator('tr[data-status="completed"]').first()
  const id = await row.getAttribute('data-backup-id')
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name: 'Download' }).click()])
  const file = join(ARTIFACTS, `download-${id}`)
  await download.saveAs(file)
  const sha = createHash('sha256').update(readFileSync(file)).digest('hex')
  rmSync(file)
  const status = await page.request.get(`/api/backup/status/${id}`)
  const { backup } = await status.json() as { backup: Backup }
  t.equal(sha, backup.sha256, 'downloaded bytes hash to the recorded sha256')
  t.equal(download.suggestedFilename(), backup.name)
})

t.test('delete asks for a confirmation naming the backup: Escape keeps it, confirming removes the row', async t => {
  const row = page.locator('tr[data-status="cancelled"]').first()
  const id = await row.getAttribute('data-backup-id')
  const name = (await row.locator('td.name').innerText()).trim()
  const del = row.getByRole('button', { name: 'Delete' })
  await del.focus()
  await page.keyboard.press('Enter')
  const dialog = page.getByRole('dialog')
  await dialog.waitFor()
  t.match(await dialog.innerText(), name, 'the dialog names the backup')
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Keep it', 'focus starts on the safe choice')
  await page.keyboard.press('Escape')
  await dialog.waitFor({ state: 'hidden' })
  t.ok(await del.evaluate(el => el === document.activeElement), 'focus returns to the Delete button')
  t.equal((await page.request.get(`/api/backup/status/${id}`)).status(), 200, 'Escape deleted nothing')

  await del.click()
  await dialog.getByRole('button', { name: 'Delete backup' }).click()
  await page.locator(`tr[data-backup-id="${id}"]`).waitFor({ state: 'detached' })
  t.equal((await page.request.get(`/api/backup/status/${id}`)).status(), 404, 'the backup is gone on the server')
})

t.test('the page raised no script errors', async t => {
  t.same(pageErrors, [])
})
