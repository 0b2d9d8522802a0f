import t from 'tap'
import { join } from 'node:path'
import { ARTIFACTS, startAdminStack } from './helpers/stack.ts'
import { startReceiver } from '../alerts/webhook-receiver.ts'

const { stack, page, pageErrors } = await startAdminStack(t, { database: 'browser_notifications', tables: 1, mbPerTable: 0.2 })

t.test('an admin sees the channels without their secrets and sends a test message to each, with its result', async t => {
  const slack = await startReceiver()
  const gone = await startReceiver([404], 'no_service')
  t.teardown(slack.stop)
  t.teardown(gone.stop)
  // the channels come from the config file: the app is started again on it
  stack.config.notifications = {
    ...stack.config.notifications,
    channels: [
      { name: 'ops-slack', type: 'slack', url: slack.url, events: ['backup.failed', 'target.stale'], timeoutMs: 5000 },
      { name: 'old-hook', type: 'discord', url: gone.url, events: ['backup.failed'], timeoutMs: 5000 },
    ],
  }
  await stack.restart()
  await page.goto(`${stack.url}/dashboard/backup`)
  await page.getByRole('link', { name: 'Notifications' }).click()
  await page.getByRole('heading', { name: 'Notifications', level: 1 }).waitFor()
  const card = page.locator('li', { hasText: 'ops-slack' })
  t.match(await card.innerText(), /slack[\s\S]*127\.0\.0\.1:\d+[\s\S]*backup\.failed, target\.stale/)
  t.notMatch(await page.locator('main').innerText(), /SECRETPART/, 'no URL path on the page')

  await card.getByRole('button', { name: 'Send test message' }).click()
  await card.getByRole('status').filter({ hasText: 'delivered' }).waitFor()
  t.match((await slack.next()).body.text, /test message for channel \*ops-slack\*/)

  const broken = page.locator('li', { hasText: 'old-hook' })
  await broken.getByRole('button', { name: 'Send test message' }).click()
  await broken.getByRole('status').filter({ hasText: 'not delivered' }).waitFor()
  t.match(await broken.getByRole('status').innerText(), /HTTP 404: no_service/)
  await page.screenshot({ path: join(ARTIFACTS, 'notifications-1280.png'), fullPage: true })
  t.same(pageErrors, [])
})
