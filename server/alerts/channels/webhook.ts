import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import type { HttpRequest } from './http-post.ts'

type WebhookConfig = Extract<ChannelConfig, { type: 'webhook' }>

/**
 * The generic webhook's JSON, as it has always been: `text` (which also makes it a valid Slack message), `event`,
 * and the notice's facts (`backup`, `schedule`, `warning`, ...); `at` is when it was sent.
 */
export function webhookRequest (config: WebhookConfig, notice: Notice, message: Message): HttpRequest {
  const { event, ...facts } = notice
  return {
    url: config.url,
    headers: { ...config.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ text: message.slackText, event, at: message.at, ...facts }),
  }
}
