import t from 'tap'
import { startAdminStack } from './helpers/stack.ts'

const { admin, page, pageErrors } = await startAdminStack(t, { database: 'browser_drills', tables: 2, mbPerTable: 0.5 })

t.test('the Drills page starts a drill, shows it live to its end with every check, and the backup list shows the badge', async t => {
  const backup = await admin.create({ countRows: true })
  t.equal(await admin.waitTerminal(backup.id), 'completed')
  await page.getByRole('link', { name: 'Drills' }).click()
  await page.getByRole('heading', { name: 'Restore drills', level: 1 }).waitFor()
  await page.getByRole('button', { name: 'Drill the newest backup' }).click()
  const row = page.locator('tr[data-drill-id]').first()
  await row.locator('[data-status="passed"]').waitFor({ timeout: 120_000 })
  const { json } = await admin.call('GET', '/api/drills')
  t.equal(json.items[0].status, 'passed', 'the server has it')
  t.equal(json.items[0].backupId, backup.id)
  const checks = page.getByRole('list', { name: `Checks of drill ${json.items[0].id}` })
  if (!await checks.isVisible()) await row.getByRole('button', { name: /Checks/ }).click()
  for (const name of ['restore', 'objects', 'rowCounts']) {
    t.equal(await checks.locator(`[data-check="${name}"]`).getAttribute('data-ok'), 'true', `${name} shown ok`)
  }
  await page.getByRole('link', { name: 'Backups' }).click()
  await page.locator('[data-drill="proven"]').first().waitFor()
  t.match(await page.locator('[data-drill="proven"]').first().innerText(), /restore proven/)
  t.same(pageErrors, [])
})
