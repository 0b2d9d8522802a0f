import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import { SEVERITY_RGB } from './colors.ts'
import type { HttpRequest } from './http-post.ts'
import { cut } from './text.ts'

type DiscordConfig = Extract<ChannelConfig, { type: 'discord' }>

/**
 * A Discord webhook execution: one embed (title, sentence, facts as inline fields, colour by severity). Mentions
 * are disabled, so an "@everyone" in a database name or an error message pings no one. Discord's limits: title
 * 256, description 4,096, 25 fields with a value of 1,024.
 */
export function discordRequest (config: DiscordConfig, notice: Notice, message: Message): HttpRequest {
  const embed = {
    title: cut(message.title, 256),
    description: cut(message.text, 4096),
    color: SEVERITY_RGB[message.severity],
    fields: message.fields.slice(0, 25).map(f => ({ name: cut(f.label, 256), value: cut(f.value, 1024), inline: f.value.length <= 40 })),
    timestamp: message.at,
    footer: { text: `pgkeep · ${notice.event}` },
  }
  return {
    url: config.url,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'pgkeep', allowed_mentions: { parse: [] }, embeds: [embed] }),
  }
}
