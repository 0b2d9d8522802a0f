import t from 'tap'
import { startAdminStack } from './helpers/stack.ts'

const { admin, page } = await startAdminStack(t, { database: 'browser_pages', tables: 2, mbPerTable: 0.5 })

t.test('a schedule is checked and described in words before it is saved, then edited and deleted', async t => {
  let posts = 0
  page.on('request', r => { if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/schedules') posts++ })
  await page.getByRole('link', { name: 'Schedules' }).click()
  await page.getByRole('heading', { name: 'Schedules', level: 1 }).waitFor()
  await page.getByRole('button', { name: 'New schedule' }).click()

  await page.getByLabel('Name').fill('nightly')
  const cron = page.getByLabel('Cron expression')
  await cron.fill('61 * * * *')
  await page.getByRole('button', { name: 'Save' }).click()
  t.equal(await cron.getAttribute('aria-invalid'), 'true', 'an impossible minute is refused')
  t.equal(posts, 0, 'nothing was sent')

  await cron.fill('30 2 * * *')
  await page.locator('#sc-cron-desc').filter({ hasText: 'At 02:30' }).waitFor()
  t.match(await page.locator('#sc-cron-desc').innerText(), /next: /, 'the next runs are previewed')
  await page.getByRole('button', { name: 'Save' }).click()
  const row = page.locator('tr', { hasText: 'nightly' })
  await row.waitFor()
  t.match(await row.innerText(), /At 02:30/, 'the list describes the schedule in words')
  const { json } = await admin.call('GET', '/api/schedules')
  const saved = json.items.find((s: { name: string }) => s.name === 'nightly')
  t.equal(saved?.cron, '30 2 * * *', 'the server has it')
  t.equal(saved?.nextRuns.length > 0, true, 'with next runs')

  await row.getByRole('button', { name: 'Edit' }).click()
  await page.getByLabel('Cron expression').fill('0 4 * * 1')
  await page.getByRole('button', { name: 'Save' }).click()
  await page.locator('tr', { hasText: 'nightly' }).filter({ hasText: 'only on Monday' }).waitFor()
  t.equal((await admin.call('GET', '/api/schedules/nightly')).json.cron, '0 4 * * 1', 'the edit reached the server')

  await page.locator('tr', { hasText: 'nightly' }).getByRole('button', { name: 'Delete' }).click()
  const dialog = page.getByRole('dialog')
  t.match(await dialog.innerText(), 'nightly', 'the confirmation names the schedule')
  await dialog.getByRole('button', { name: 'Delete schedule' }).click()
  await page.locator('tr', { hasText: 'nightly' }).waitFor({ state: 'detached' })
  t.equal((await admin.call('GET', '/api/schedules/nightly')).status, 404, 'and it is gone on the server')
})

t.test('editing a schedule in the form keeps the backup settings the form does not show', async t => {
  const backup = { compression: 'gzip', level: 9, schemaOnly: true, excludeTables: ['public.audit_*'], noOwner: true }
  t.equal((await admin.call('POST', '/api/schedules', { name: 'tuned', cron: '0 1 * * *', backup })).status, 201)
  await page.getByRole('link', { name: 'Storage' }).click()
  await page.getByRole('link', { name: 'Schedules' }).click()
  const row = page.locator('tr', { hasText: 'tuned' })
  await row.getByRole('button', { name: 'Edit' }).click()
  await page.getByLabel('Cron expression').fill('0 5 * * *')
  await page.getByRole('button', { name: 'Save' }).click()
  await page.locator('tr', { hasText: 'tuned' }).filter({ hasText: 'At 05:00' }).waitFor()
  const saved = (await admin.call('GET', '/api/schedules/tuned')).json
  t.equal(saved.cron, '0 5 * * *', 'the edit reached the server')
  t.same(saved.backup, { format: 'custom', ...backup }, 'level and options are still there')
  await admin.call('DELETE', '/api/schedules/tuned')
})

t.test('the storage page charts sizes and durations, and the audit page lists what happened', async t => {
  const backup = await admin.create({ compression: 'gzip' })
  t.equal(await admin.waitTerminal(backup.id), 'completed')
  await page.getByRole('link', { name: 'Storage' }).click()
  await page.getByRole('heading', { name: /^default/ }).waitFor()
  await page.locator('.chart[role="img"] canvas').nth(2).waitFor()
  t.equal(await page.locator('.chart[role="img"]').count(), 3, 'space over time, sizes and durations')

  await page.getByRole('link', { name: 'Audit log' }).click()
  await page.locator('tr', { hasText: 'backup.create' }).first().waitFor()
  t.ok(await page.locator('tr', { hasText: 'schedule.delete' }).count() >= 1, 'the schedule changes are in the audit log')
})
