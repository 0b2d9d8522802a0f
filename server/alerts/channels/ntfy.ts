import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice, Severity } from '../notice.ts'
import type { HttpRequest } from './http-post.ts'

type NtfyConfig = Extract<ChannelConfig, { type: 'ntfy' }>

/** ntfy's priorities: 5 max, 4 high, 3 default, 2 low, 1 min. A problem buzzes; good news does not. */
const PRIORITY: Record<Severity, string> = { error: '4', warning: '3', info: '3', success: '2' }
/** Tags that ntfy shows as emojis in front of the title. */
const TAG: Record<Severity, string> = { error: 'rotating_light', warning: 'warning', info: 'information_source', success: 'white_check_mark' }

/** HTTP header values are bytes; ntfy decodes RFC 2047 encoded words, so a database name in Cyrillic survives. */
function headerValue (text: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(text) ? text : `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`
}

/** A publish: the message as the body, title, priority and tags as headers, an access token or a password if configured. */
export function ntfyRequest (config: NtfyConfig, notice: Notice, message: Message): HttpRequest {
  const facts = message.fields.map(f => `${f.label}: ${f.value}`).join('\n')
  const auth: Record<string, string> = config.token
    ? { authorization: `Bearer ${config.token}` }
    : config.username
      ? { authorization: `Basic ${Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64')}` }
      : {}
  return {
    url: config.url,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      title: headerValue(message.title),
      priority: PRIORITY[message.severity],
      tags: `${TAG[message.severity]},pgkeep,${notice.event}`,
      ...auth,
    },
    body: `${message.text}${facts ? `\n\n${facts}` : ''}`,
  }
}
