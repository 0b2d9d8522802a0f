import t from 'tap'
import { join } from 'node:path'
import { startAdminStack, ARTIFACTS } from './helpers/stack.ts'
import { DESKTOP, PHONE } from './helpers/browser.ts'
import { axeProblems } from './helpers/axe.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'

// With a shared catalog the dashboard says which instance runs each job (docs/catalog.md, "Seeing the instances").
const { stack, admin, page, pageErrors } = await startAdminStack(t, { database: 'browser_instances', tables: 1, mbPerTable: 0.5, catalog: 'browser_instances_catalog' })

t.test('a running job\'s card and its row name the instance that runs it, the row still after it ended; axe-clean and a card on a phone', async t => {
  const me: string = (await admin.call('GET', '/api/health/ready')).json.instance.id
  t.match(me, /-\d+-[0-9a-f]{6}$/, 'the ready reply names this instance')
  await page.goto('/dashboard/backup')
  await page.locator('[data-state="online"]').waitFor()
  // the dump waits on a lock until released: running for as long as the test looks
  const gate = await holdDumpGate(stack.cluster, stack.database)
  t.teardown(gate.release)
  const backup = await admin.create({ compression: 'none' })

  const card = page.locator(`article[data-backup-id="${backup.id}"]`)
  await card.locator(`[data-instance="${me}"]`).waitFor()
  t.match(await card.locator('[data-instance]').innerText(), new RegExp(`^Instance\\s+${me}$`, 'i'), 'the job card has an Instance entry')
  const row = page.locator(`tr[data-backup-id="${backup.id}"][data-status="running"]`)
  await row.locator(`[data-instance="${me}"]`).waitFor()
  t.equal(await row.locator('[data-instance]').innerText(), `on ${me}`, 'the row says it under the status')

  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme })
    for (const viewport of [DESKTOP, PHONE]) {
      await page.setViewportSize(viewport)
      t.same(await axeProblems(page), [], `axe: ${scheme} ${viewport.width} px`)
      await page.screenshot({ path: join(ARTIFACTS, `instances-running-${scheme}-${viewport.width}.png`), fullPage: true })
    }
  }
  t.equal(await row.evaluate(el => getComputedStyle(el).display), 'block', 'on a phone the row is still a card')
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'nothing makes a phone scroll sideways')
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize(DESKTOP)

  await gate.release()
  const ended = page.locator(`tr[data-backup-id="${backup.id}"][data-status="completed"]`)
  await ended.waitFor({ timeout: 60_000 })
  t.equal(await ended.locator('[data-instance]').innerText(), `on ${me}`, 'a completed backup keeps the instance that ran it')
  t.same(pageErrors, [], 'no page errors')
})
