import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { dispatch } from '../../server/cli/main.ts'
import { memoryIO } from './cli-runner.ts'
import { startReceiver } from '../alerts/webhook-receiver.ts'

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-notify-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('notify lists the channels without secrets; notify test NAME sends one and exits by its outcome', async t => {
  const slack = await startReceiver()
  const gone = await startReceiver([404], 'no_service')
  t.teardown(slack.stop)
  t.teardown(gone.stop)
  writeFileSync(join(dir, 'pgkeep.json'), JSON.stringify({
    notifications: [
      { name: 'ops-slack', type: 'slack', url: '${SLACK_URL}', events: ['backup.failed'] },
      { name: 'gone', type: 'discord', url: gone.url },
    ],
  }))
  const env = { PGKEEP_CONFIG: join(dir, 'pgkeep.json'), PGKEEP_BACKUP_DIR: dir, SLACK_URL: slack.url }

  const list = memoryIO(env)
  t.equal(await dispatch(['notify'], list), 0)
  t.match(list.out(), new RegExp(`^ops-slack  slack  127\\.0\\.0\\.1:\\d+  backup\\.failed\n`))
  t.notMatch(list.out(), /SECRETPART/)

  const sent = memoryIO(env)
  t.equal(await dispatch(['notify', 'test', 'ops-slack'], sent), 0, sent.err())
  t.match(sent.out(), /^delivered to ops-slack \(slack\) in \d+ ms\n$/)
  t.match((await slack.next()).body.text, /test message for channel \*ops-slack\*/)

  const failed = memoryIO(env)
  t.equal(await dispatch(['notify', 'test', 'gone', '--json'], failed), 1)
  t.match(JSON.parse(failed.out()), { name: 'gone', type: 'discord', ok: false, error: 'HTTP 404: no_service' })

  const usage = memoryIO(env)
  t.equal(await dispatch(['notify', 'send', 'gone'], usage), 2)
  t.match(usage.err(), /unknown action "send"; expected: test NAME/)
  const unknown = memoryIO(env)
  t.not(await dispatch(['notify', 'test', 'nope'], unknown), 0)
  t.match(unknown.err(), /notification channel "nope" not found/)
})
