import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import type { HttpRequest } from './http-post.ts'
import { cut, escapeMarkup as escape } from './text.ts'

type SlackConfig = Extract<ChannelConfig, { type: 'slack' }>

/**
 * An incoming-webhook message: `text` for the notification and for clients that show no blocks, and blocks
 * (header, the sentence, the facts as fields, the event) for the channel. Slack's limits: header 150 characters,
 * 10 fields of 2,000.
 */
export function slackRequest (config: SlackConfig, notice: Notice, message: Message): HttpRequest {
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(message.title, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: cut(escape(message.slackText), 3000) } },
  ]
  if (message.fields.length > 0) {
    blocks.push({
      type: 'section',
      fields: message.fields.slice(0, 10).map(f => ({ type: 'mrkdwn', text: cut(`*${escape(f.label)}*\n${escape(f.value)}`, 2000) })),
    })
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `pgkeep · ${notice.event}` }] })
  return {
    url: config.url,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: escape(message.slackText), blocks }),
  }
}
