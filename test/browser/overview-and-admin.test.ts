import t from 'tap'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import type { Page } from 'playwright-core'
import { startAdminStack, ARTIFACTS, VIEWER } from './helpers/stack.ts'
import { ApiClient } from './helpers/api-client.ts'
import { openBrowser, DESKTOP, PHONE } from './helpers/browser.ts'
import { axeProblems } from './helpers/axe.ts'

const { stack, admin, session, page, pageErrors } = await startAdminStack(t, { database: 'browser_overview', tables: 2, mbPerTable: 0.5 })
// a second target with no backup at all: stale by construction, and a second choice in every target select
stack.config.targets.spare = { ...stack.config.targets.default, name: 'spare' }

async function shoot (p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
}
async function open (p: Page, link: string, heading: string | RegExp): Promise<void> {
  await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click()
  await p.getByRole('heading', { name: heading, level: 1 }).waitFor()
}

// one completed and one failed backup of `default`, before any page is looked at
const completed = await admin.create({ compression: 'none' })
const failed = await admin.create({ schemas: ['no_such_schema'] })
if (await admin.waitTerminal(completed.id) !== 'completed' || await admin.waitTerminal(failed.id) !== 'failed') throw new Error('set-up backups did not end as planned')

t.test('a new session lands on the overview: one card per target, backed up or stale, with failures and storage', async t => {
  const viewer = await openBrowser(stack.url)
  t.teardown(viewer.close)
  const p = viewer.page
  await p.goto('/')
  await p.waitForURL(/\/login/)
  await p.getByLabel('Username').fill(VIEWER.username)
  await p.getByLabel('Password').fill(VIEWER.password)
  await p.getByRole('button', { name: 'Sign in' }).click()
  await p.waitForURL(url => url.pathname === '/dashboard')
  await p.getByRole('heading', { name: 'Overview', level: 1 }).waitFor()

  const card = p.locator('section[data-target="default"]')
  await card.waitFor()
  t.equal(await card.getAttribute('data-stale'), 'false')
  t.match(await card.locator('[data-field="last"]').innerText(), /just now|min ago/)
  const failures = await card.locator('[data-field="failures"]').innerText()
  t.match(failures, /^1\b/, 'one failure in the last 24 h')
  t.match(failures, /[A-Z_]{3,} \S+/, `the failure shows its code and its message (${failures})`)
  const storage = await card.locator('[data-field="storage"]').innerText()
  t.match(storage, /\d[\d.]*\u00a0(B|KiB|MiB)/, 'IEC units, never split from the number')
  t.match(storage, /1\u00a0backup\b(?!s)/, '"1 backup", not "1 backups"')
  t.match(await card.locator('[data-field="next"]').innerText(), /no schedule/)

  const spare = p.locator('section[data-target="spare"]')
  t.equal(await spare.getAttribute('data-stale'), 'true', 'a target never backed up is stale')
  t.equal(await spare.locator('.badge.stale').innerText(), 'stale')
  t.match(await p.locator('.summary').innerText(), /1\u00a0target without a recent backup/)
  await shoot(p, 'overview-1280-light')
  await p.setViewportSize(PHONE)
  await shoot(p, 'overview-390-light')
})

t.test('a target is chosen from a select everywhere: create form, list filter, schedules', async t => {
  await page.goto('/dashboard/backup')
  const create = page.locator('select#cb-target')
  await create.locator('option[value="spare"]').waitFor({ state: 'attached' })
  t.same(await create.locator('option').allInnerTexts(), ['default', 'spare'])
  t.equal(await create.inputValue(), 'default', 'the first target is preselected')
  t.equal(await page.locator('input#cb-target').count(), 0, 'no free-text target field')

  const filter = page.locator('select#f-target')
  t.same(await filter.locator('option').allInnerTexts(), ['any', 'default', 'spare'])
  await filter.selectOption('spare')
  await page.getByText('No backups match.').waitFor()
  await filter.selectOption('default')
  await page.locator(`tr[data-backup-id="${completed.id}"]`).waitFor()
  await filter.selectOption('')

  await open(page, 'Schedules', 'Schedules')
  await page.getByRole('button', { name: 'New schedule' }).click()
  const sched = page.locator('select#sc-target')
  t.same(await sched.locator('option').allInnerTexts(), ['the default target', 'default', 'spare'])
  await page.getByLabel('Name', { exact: true }).fill('spare-nightly')
  // the scheduler knows the targets of its start-up, before `spare` was added: the schedule goes to `default`
  await sched.selectOption('default')
  await page.getByRole('button', { name: 'Save' }).click()
  await page.locator('tr', { hasText: 'spare-nightly' }).waitFor()
  t.equal((await admin.call('GET', '/api/schedules/spare-nightly')).json.backup.target, 'default')
  await shoot(page, 'schedules-1280')
})

t.test('users: an admin adds one, changes the role, resets the password and removes them', async t => {
  await open(page, 'Users & tokens', 'Users & tokens')
  await page.getByLabel('Username').fill('uma')
  await page.locator('#u-role').selectOption('viewer')
  await page.getByLabel('Password', { exact: true }).fill('uma-first-pw')
  await page.getByRole('button', { name: 'Add user' }).click()
  const row = page.locator('li[data-user="uma"]')
  await row.waitFor()
  await ApiClient.login(stack.url, { username: 'uma', password: 'uma-first-pw' })

  await row.getByLabel('Role of uma').selectOption('operator')
  await page.locator('.toast', { hasText: 'uma is now operator' }).waitFor()
  t.equal((await admin.call('GET', '/api/users')).json.items.find((u: { username: string }) => u.username === 'uma').role, 'operator')

  await row.getByRole('button', { name: 'Reset password' }).click()
  await row.getByLabel('New password for uma').fill('uma-second-pw')
  await row.getByRole('button', { name: 'Set password', exact: true }).click()
  await page.locator('.toast', { hasText: 'Password of uma reset' }).waitFor()
  await ApiClient.login(stack.url, { username: 'uma', password: 'uma-second-pw' })
  await t.rejects(ApiClient.login(stack.url, { username: 'uma', password: 'uma-first-pw' }))

  await row.getByRole('button', { name: 'Remove', exact: true }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Remove user' }).click()
  await row.waitFor({ state: 'detached' })
  t.notOk((await admin.call('GET', '/api/users')).json.items.some((u: { username: string }) => u.username === 'uma'))
})

t.test('API tokens: created and shown once with a copy button, listed, revoked', async t => {
  await session.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url })
  await page.getByLabel('Name', { exact: true }).fill('ci-export')
  await page.locator('#t-role').selectOption('viewer')
  await page.getByRole('button', { name: 'Create token' }).click()
  const shown = page.locator('#new-token')
  await shown.waitFor()
  const token = await shown.inputValue()
  t.match(token, /^eyJ/, 'the token is shown')
  await page.getByRole('button', { name: 'Copy', exact: true }).click()
  await page.getByRole('button', { name: 'Copied' }).waitFor()
  t.equal(await page.evaluate(() => navigator.clipboard.readText()), token, 'the copy button put it on the clipboard')
  const me = await fetch(`${stack.url}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
  t.same(await me.json(), { username: 'token:ci-export', role: 'viewer' }, 'the token works')
  await shoot(page, 'admin-token-created-1280')

  await page.getByRole('button', { name: 'Done' }).click()
  t.notOk((await page.content()).includes(token), 'once dismissed the token is nowhere on the page')
  await page.reload()
  await page.locator('tr[data-token="ci-export"]').waitFor()
  t.notOk((await page.content()).includes(token), 'nor after a reload')

  const row = page.locator('tr[data-token="ci-export"]')
  await row.getByRole('button', { name: 'Revoke' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click()
  await page.locator('tr[data-token="ci-export"][data-revoked="true"]').waitFor()
  const after = await fetch(`${stack.url}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(after.status, 401, 'a revoked token is refused')
})

t.test('pin and unpin on a backup; cleanup previews why each backup is kept or deleted, then deletes exactly that', async t => {
  const second = await admin.create({ compression: 'none' })
  t.equal(await admin.waitTerminal(second.id), 'completed')
  const third = await admin.create({ compression: 'none' })
  t.equal(await admin.waitTerminal(third.id), 'completed')

  await page.goto('/dashboard/backup')
  const oldest = page.locator(`tr[data-backup-id="${completed.id}"]`)
  await oldest.getByRole('button', { name: 'Pin' }).click()
  await oldest.locator('.badge.pinned').waitFor()
  t.equal((await admin.call('GET', `/api/backup/status/${completed.id}`)).json.backup.pinned, true)

  await open(page, 'Cleanup', 'Cleanup')
  await page.getByLabel('Keep last').fill('1')
  await page.getByRole('button', { name: 'Preview' }).click()
  await page.locator('[data-preview]').waitFor()
  const why = async (id: string): Promise<[string | null, string]> => {
    const r = page.locator(`[data-preview] tr[data-backup-id="${id}"]`)
    return [await r.getAttribute('data-decision'), await r.locator('.why').innerText()]
  }
  t.match(await why(third.id), ['keep', /last 1/])
  t.match(await why(completed.id), ['keep', /pinned/])
  t.match(await why(second.id), ['delete', /kept by none of keepLast 1/])
  await shoot(page, 'cleanup-preview-1280')
  await page.setViewportSize(PHONE)
  await shoot(page, 'cleanup-preview-390')
  await page.setViewportSize(DESKTOP)
  t.equal((await admin.call('GET', `/api/backup/status/${second.id}`)).status, 200, 'a preview deletes nothing')

  await page.getByRole('button', { name: 'Delete 1\u00a0backup' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Delete backups' }).click()
  await page.locator('.toast', { hasText: 'Cleanup deleted 1\u00a0backup' }).waitFor()
  t.equal((await admin.call('GET', `/api/backup/status/${second.id}`)).status, 404, 'the one listed as delete is gone')
  t.equal((await admin.call('GET', `/api/backup/status/${completed.id}`)).status, 200, 'the pinned one stays')

  await page.goto('/dashboard/backup')
  await oldest.getByRole('button', { name: 'Unpin' }).click()
  await oldest.locator('.badge.pinned').waitFor({ state: 'detached' })
  t.equal((await admin.call('GET', `/api/backup/status/${completed.id}`)).json.backup.pinned, false)
})

t.test('details: a cancel is neutral, a failure shows its message, toasts never cover the table nor pile up', async t => {
  // two at once with concurrency 1: the second is still queued when cancelled, so it ends cancelled whatever the first does
  const first = await admin.create({ compression: 'gzip', level: 9 })
  const queued = await admin.create({ compression: 'gzip', level: 9 })
  await admin.call('POST', `/api/backup/${queued.id}/cancel`, {})
  await admin.call('POST', `/api/backup/${first.id}/cancel`, {})
  t.equal(await admin.waitTerminal(queued.id), 'cancelled')
  await admin.waitTerminal(first.id)

  await page.goto('/dashboard/backup')
  const badge = page.locator(`tr[data-backup-id="${queued.id}"] .badge.cancelled`)
  await badge.waitFor()
  const [badgeColor, muted, bad, warn] = await badge.evaluate(el => {
    const v = (name: string): string => { const d = document.createElement('span'); d.style.color = `var(${name})`; document.body.append(d); const c = getComputedStyle(d).color; d.remove(); return c }
    return [getComputedStyle(el).color, v('--muted'), v('--bad'), v('--warn')]
  })
  t.equal(badgeColor, muted, 'cancelled is drawn in the neutral colour')
  t.not(badgeColor, bad)
  t.not(badgeColor, warn)

  const err = page.locator(`tr[data-backup-id="${failed.id}"] .err`)
  t.match(await err.innerText(), /^[A-Z_]{3,} \S.{5,}/, 'a failed backup shows its message, not only its code')

  // five pushes: at most three toasts, in the page flow above the table
  const row = page.locator(`tr[data-backup-id="${completed.id}"]`)
  for (let i = 0; i < 5; i++) {
    await row.getByRole('button', { name: /^(Pin|Unpin)$/ }).click()
    await row.getByRole('button', { name: /^(Pin|Unpin)$/ }).and(page.locator(':not([disabled])')).waitFor()
  }
  t.ok(await page.locator('.toast').count() <= 3, 'toasts do not pile up')
  const toastBox = await page.locator('.toasts').boundingBox()
  const tableBox = await page.locator('table').first().boundingBox()
  t.ok(toastBox && tableBox && toastBox.y + toastBox.height <= tableBox.y, 'the toasts are above the table, not over it')
  if ((await admin.call('GET', `/api/backup/status/${completed.id}`)).json.backup.pinned) await admin.call('POST', `/api/backup/${completed.id}/pin`, { pinned: false })
})

t.test('phone: backups and schedules are cards with every action on screen, no sideways scrolling', async t => {
  await page.setViewportSize(PHONE)
  t.teardown(() => page.setViewportSize(DESKTOP))
  for (const [path, rows] of [['/dashboard/backup', 'tr[data-backup-id]'], ['/dashboard/schedules', 'tbody tr:has(td[data-label])']] as const) {
    await page.goto(path)
    await page.locator(rows).first().waitFor()
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    t.equal(overflow, 0, `${path}: nothing wider than the screen`)
    const controls = page.locator(`${rows} button, ${rows} a.button`)
    const n = await controls.count()
    t.ok(n > 0, `${path}: the rows have actions`)
    for (let i = 0; i < n; i++) {
      const box = await controls.nth(i).boundingBox()
      t.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `${path}: action ${i} is on screen`)
    }
    const display = await page.locator(rows).first().evaluate(el => getComputedStyle(el).display)
    t.equal(display, 'block', `${path}: a row is a card`)
    await shoot(page, `phone-cards-${path.split('/').pop() ?? ''}-390`)
  }
})

t.test('charts: uPlot loads only with the storage page, and draws sizes and durations over time with axes', async t => {
  const loaded: string[] = []
  const note = (r: { url (): string }): void => { loaded.push(r.url()) }
  page.on('request', note)
  t.teardown(() => { page.off('request', note) })
  await page.goto('/dashboard/backup')
  await page.locator('tr[data-backup-id]').first().waitFor()
  t.notOk(loaded.some(u => /uPlot/i.test(u)), 'the first load does not fetch the chart library')
  await open(page, 'Storage', 'Storage')
  const charts = page.locator('.chart[role="img"]')
  await charts.nth(2).locator('canvas').waitFor()
  t.ok(loaded.some(u => /uPlot/i.test(u)), 'the storage page fetched it')
  const heading = await page.getByRole('heading', { name: /^default/, level: 2 }).innerText()
  t.match(heading, /\d\u00a0backups? · [1-9][\d.]*\u00a0(KiB|MiB)$/, `the space the target uses (${heading})`)
  t.match(await charts.nth(1).getAttribute('aria-label'), /^Backup size: \d+ points from .+ to .+, latest [\d.]+\u00a0(B|KiB|MiB)/)
  t.match(await charts.nth(2).getAttribute('aria-label'), /^Duration: .*latest \d+s/)
  const size = await charts.first().locator('canvas').boundingBox()
  t.ok(size && size.width > 200 && size.height > 100, 'the chart has room for its axes')
  await shoot(page, 'charts-1280')
  await page.setViewportSize(PHONE)
  await page.waitForFunction(() => (document.querySelector('.chart canvas') as HTMLCanvasElement | null)?.getBoundingClientRect().width ?? 999 <= 390)
  await shoot(page, 'charts-390')
  await page.setViewportSize(DESKTOP)
})

t.test('dark mode follows the system until toggled; the toggle is remembered', async t => {
  const theme = (): Promise<string | undefined> => page.evaluate(() => document.documentElement.dataset.theme)
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.goto('/dashboard')
  await page.getByRole('heading', { name: 'Overview' }).waitFor()
  t.equal(await theme(), 'dark', 'the system says dark')
  const rootBg = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim())
  t.equal(rootBg, '#0f1217')
  await shoot(page, 'overview-1280-dark')

  await page.getByRole('button', { name: 'Switch to light mode' }).click()
  t.equal(await theme(), 'light')
  await page.reload()
  await page.getByRole('heading', { name: 'Overview' }).waitFor()
  t.equal(await theme(), 'light', 'the choice survives a reload against a dark system')
  await page.getByRole('button', { name: 'Switch to dark mode' }).click()
  t.equal(await theme(), 'dark')
  t.equal(await page.evaluate(() => localStorage.getItem('pgkeep.theme')), null, 'back on the system choice')
  await page.emulateMedia({ colorScheme: 'light' })
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'light')
  t.pass('and following it again')
})

t.test('accessibility: axe (WCAG 2.1 AA + best practices) finds nothing on any page, light and dark, 1280 and 390 px', async t => {
  const pages = [
    ['/dashboard', 'Overview'], ['/dashboard/backup', 'Backups'], ['/dashboard/schedules', 'Schedules'], ['/dashboard/storage', 'Storage'],
    ['/dashboard/cleanup', 'Cleanup'], ['/dashboard/admin', 'Users & tokens'], ['/dashboard/audit', 'Audit log'],
  ] as const
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme })
    for (const viewport of [DESKTOP, PHONE]) {
      await page.setViewportSize(viewport)
      for (const [path, heading] of pages) {
        await page.goto(path)
        await page.getByRole('heading', { name: heading, level: 1 }).waitFor()
        await page.getByText('Loading…').first().waitFor({ state: 'detached' })
        if (path === '/dashboard/storage') await page.locator('.chart canvas').first().waitFor()
        if (path === '/dashboard/cleanup') {
          await page.getByLabel('Keep last').fill('1')
          await page.getByRole('button', { name: 'Preview' }).click()
          await page.locator('[data-preview]').waitFor()
        }
        const problems = await axeProblems(page)
        t.same(problems, [], `${path} ${scheme} ${viewport.width} px`)
        await shoot(page, `axe-${path.split('/').pop()}-${scheme}-${viewport.width}`)
      }
    }
  }
  const anon = await openBrowser(stack.url)
  t.teardown(anon.close)
  for (const scheme of ['light', 'dark'] as const) {
    await anon.page.emulateMedia({ colorScheme: scheme })
    await anon.page.goto('/login')
    await anon.page.getByRole('button', { name: 'Sign in' }).waitFor()
    t.same(await axeProblems(anon.page), [], `login ${scheme}`)
  }
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize(DESKTOP)
})

t.test('the first load stays small (gzip, everything index.html pulls in)', async t => {
  const html = await (await fetch(`${stack.url}/`)).text()
  let total = gzipSync(html).length
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map(m => m[1])
  for (const a of assets) total += gzipSync(Buffer.from(await (await fetch(`${stack.url}${a}`)).arrayBuffer())).length
  t.comment(`first load: ${(total / 1024).toFixed(1)} KiB gzip in ${assets.length + 1} files`)
  t.ok(total < 80 * 1024, `under 80 KiB (${total} bytes)`)
})

t.test('no script errors on any page', async t => {
  t.same(pageErrors, [])
})
