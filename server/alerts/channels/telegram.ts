import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import type { HttpRequest } from './http-post.ts'
import { cut, escapeMarkup as escape } from './text.ts'

type TelegramConfig = Extract<ChannelConfig, { type: 'telegram' }>

/** Telegram refuses a message over 4,096 characters (after entities are parsed; the escaped length is an upper bound). */
const MAX_TEXT = 4096

/** The Bot API's sendMessage: the title in bold, the sentence, the facts one a line; no link previews. */
export function telegramRequest (config: TelegramConfig, notice: Notice, message: Message): HttpRequest {
  const facts = message.fields.map(f => `${escape(f.label)}: ${escape(f.value)}`).join('\n')
  let text = `<b>${escape(message.title)}</b>\n${escape(message.text)}${facts ? `\n\n${facts}` : ''}\n<i>${notice.event}</i>`
  // cut before escaping: a cut inside an entity (&am) would make Telegram refuse the whole message
  if (text.length > MAX_TEXT) text = `<b>${escape(cut(message.title, 200))}</b>\n${escape(cut(message.text, 3000))}`
  return {
    url: `${config.apiUrl}/bot${config.botToken}/sendMessage`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ chat_id: config.chatId, text, parse_mode: 'HTML', link_preview_options: { is_disabled: true } }),
  }
}
