import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import { discordRequest } from './discord.ts'
import { sendEmail } from './email.ts'
import { hostOf, post, type HttpRequest } from './http-post.ts'
import { ntfyRequest } from './ntfy.ts'
import { slackRequest } from './slack.ts'
import { teamsRequest } from './teams.ts'
import { telegramRequest } from './telegram.ts'
import { webhookRequest } from './webhook.ts'

/** The request an HTTP channel sends for a notice; undefined for e-mail. */
export function httpRequest (config: ChannelConfig, notice: Notice, message: Message): HttpRequest | undefined {
  switch (config.type) {
    case 'webhook': return webhookRequest(config, notice, message)
    case 'slack': return slackRequest(config, notice, message)
    case 'discord': return discordRequest(config, notice, message)
    case 'teams': return teamsRequest(config, notice, message)
    case 'telegram': return telegramRequest(config, notice, message)
    case 'ntfy': return ntfyRequest(config, notice, message)
    case 'email': return undefined
  }
}

/** One delivery attempt; throws a DeliveryError. The signal ends it (timeout, shutdown). */
export async function deliverOnce (config: ChannelConfig, notice: Notice, message: Message, signal: AbortSignal): Promise<void> {
  if (config.type === 'email') return await sendEmail(config, notice, message, signal, config.timeoutMs)
  await post(httpRequest(config, notice, message)!, signal)
}

/** Where a channel goes, as the API and logs may show it: never the URL's path, a token or a password. */
export function destinationOf (config: ChannelConfig): string {
  switch (config.type) {
    case 'telegram': return `chat ${config.chatId} via ${hostOf(config.apiUrl)}`
    case 'email': return `${config.to.join(', ')} via ${config.host}:${config.port}`
    default: return hostOf(config.url)
  }
}

/** Every secret a channel holds, to be cut out of anything said about a failed delivery. */
export function secretsOf (config: ChannelConfig): string[] {
  const found: string[] = []
  const fromUrl = (url: string): void => {
    found.push(url)
    try {
      const u = new URL(url)
      if (u.pathname.length > 1) found.push(u.pathname)
      if (u.search.length > 1) found.push(u.search)
      if (u.password) found.push(u.password)
    } catch { /* checked at start-up */ }
  }
  switch (config.type) {
    case 'webhook':
      fromUrl(config.url)
      found.push(...Object.values(config.headers))
      break
    case 'slack': case 'discord': case 'teams': fromUrl(config.url); break
    case 'telegram': found.push(config.botToken); break
    case 'ntfy':
      fromUrl(config.url)
      if (config.token) found.push(config.token)
      if (config.password) found.push(config.password)
      break
    case 'email': if (config.password) found.push(config.password); break
  }
  // a secret shorter than this would blank out ordinary words ("/" of a URL, a one-letter password)
  return found.filter(s => s.length >= 4)
}
