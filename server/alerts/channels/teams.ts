import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import { SEVERITY_RGB } from './colors.ts'
import type { HttpRequest } from './http-post.ts'

type TeamsConfig = Extract<ChannelConfig, { type: 'teams' }>

/** Adaptive Cards name colours, not values. */
const CARD_COLOR = { error: 'Attention', warning: 'Warning', success: 'Good', info: 'Default' } as const

/**
 * A Teams incoming webhook. `adaptive` (the default): a message with one Adaptive Card attachment, what a
 * Workflows ("Post to a channel when a webhook request is received") webhook takes; `messagecard`: the legacy
 * Office 365 connector card, for connectors still running.
 */
export function teamsRequest (config: TeamsConfig, notice: Notice, message: Message): HttpRequest {
  const body = config.format === 'messagecard'
    ? {
        '@type': 'MessageCard',
        '@context': 'https://schema.org/extensions',
        summary: message.title,
        themeColor: SEVERITY_RGB[message.severity].toString(16).padStart(6, '0'),
        title: message.title,
        text: message.text,
        sections: [{ facts: [...message.fields.map(f => ({ name: f.label, value: f.value })), { name: 'Event', value: notice.event }] }],
      }
    : {
        type: 'message',
        attachments: [{
          contentType: 'application/vnd.microsoft.card.adaptive',
          contentUrl: null,
          content: {
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            type: 'AdaptiveCard',
            version: '1.4',
            msteams: { width: 'Full' },
            body: [
              { type: 'TextBlock', text: message.title, weight: 'Bolder', size: 'Medium', color: CARD_COLOR[message.severity], wrap: true },
              { type: 'TextBlock', text: message.text, wrap: true },
              { type: 'FactSet', facts: [...message.fields.map(f => ({ title: f.label, value: f.value })), { title: 'Event', value: notice.event }] },
            ],
          },
        }],
      }
  return { url: config.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
}
