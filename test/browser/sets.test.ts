import t from 'tap'
import { join } from 'node:path'
import { startAdminStack, ARTIFACTS } from './helpers/stack.ts'

const { stack, admin, page, pageErrors } = await startAdminStack(t, { database: 'browser_sets', tables: 1, mbPerTable: 1 })
await stack.cluster.createDatabase('browser_sets_two')

t.test('a backup set is one row in the list that expands to its members, and is deleted whole', async t => {
  const created = await admin.call('POST', '/api/backup/create', { databases: ['browser_sets', 'browser_sets_two'] })
  t.equal(created.status, 202)
  const setId: string = created.json.set.id
  for (const m of created.json.set.members) t.equal(await admin.waitTerminal(m.id), 'completed')

  const row = page.locator(`tr.set-row[data-set-id="${setId}"][data-status="completed"]`)
  await row.waitFor()
  t.equal(await page.locator(`tr.set-row[data-set-id="${setId}"]`).count(), 1, 'the set is one row')
  t.match(await row.innerText(), /set: 2 databases \+ globals/)
  t.equal(await page.locator('tr.set-member').count(), 0, 'members are folded away at first')

  await row.getByRole('button', { name: '▸' }).click()
  const members = page.locator('tr.set-member')
  await members.nth(2).waitFor()
  t.same(await members.evaluateAll(rows => rows.map(r => r.querySelector('td')?.childNodes[0]?.textContent?.trim())), ['globals', 'browser_sets', 'browser_sets_two'], 'globals first, then the databases')
  t.equal(await row.getByRole('button', { name: '▾' }).getAttribute('aria-expanded'), 'true')
  await page.screenshot({ path: join(ARTIFACTS, 'set-expanded-1280.png'), fullPage: true })

  await row.getByRole('button', { name: 'Delete set' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Delete set' }).click()
  await page.locator(`tr.set-row[data-set-id="${setId}"]`).waitFor({ state: 'detached' })
  t.equal((await admin.call('GET', `/api/sets/${setId}`)).status, 404, 'the set and its members are gone')
  t.same(pageErrors, [], 'no page errors')
})
