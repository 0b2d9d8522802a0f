import { createTransport } from 'nodemailer'
import type { ChannelConfig } from '../../config-notifications.ts'
import type { Message, Notice } from '../notice.ts'
import { DeliveryError } from './http-post.ts'

type EmailConfig = Extract<ChannelConfig, { type: 'email' }>

/** The mail: `[pgkeep] <title>` and a plain-text body (the sentence, the facts, the event for mail filters). */
export function emailMessage (config: EmailConfig, notice: Notice, message: Message): { from: string, to: string[], subject: string, text: string, headers: Record<string, string> } {
  const facts = message.fields.map(f => `${f.label}: ${f.value}`).join('\n')
  return {
    from: config.from,
    to: config.to,
    subject: `${config.subjectPrefix ? `${config.subjectPrefix} ` : ''}${message.title}`,
    text: `${message.text}\n${facts ? `\n${facts}\n` : ''}\n-- \npgkeep · ${notice.event}\n`,
    headers: { 'X-Pgkeep-Event': notice.event },
  }
}

/** SMTP failures that may pass later: a 4xx reply, a connection that failed or timed out. An auth or TLS refusal, or a 5xx, will not. */
function classify (err: unknown): DeliveryError {
  const e = err as { code?: string, responseCode?: number, message?: string }
  const message = (e.message ?? 'SMTP error').replace(/\s+/g, ' ').slice(0, 300)
  if (e.responseCode !== undefined) return new DeliveryError(message, e.responseCode >= 400 && e.responseCode < 500)
  return new DeliveryError(message, ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNRESET'].includes(e.code ?? ''))
}

/**
 * Sends one mail over its own connection. `starttls` (the default) refuses a server that cannot upgrade, so a
 * password never crosses in clear; `none` is for a relay on the same host or network. Every wait (connect,
 * greeting, each reply) is bounded by the channel's timeout, and an abandoned attempt returns at once.
 */
export async function sendEmail (config: EmailConfig, notice: Notice, message: Message, signal: AbortSignal, timeoutMs: number): Promise<void> {
  const transport = createTransport({
    host: config.host,
    port: config.port,
    secure: config.tls === 'implicit',
    requireTLS: config.tls === 'starttls',
    ignoreTLS: config.tls === 'none',
    ...(config.username ? { auth: { user: config.username, pass: config.password ?? '' } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
  })
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new DeliveryError(signal.reason?.name === 'TimeoutError' ? 'timed out' : 'aborted', signal.reason?.name === 'TimeoutError'))
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([transport.sendMail(emailMessage(config, notice, message)), aborted])
  } catch (err) {
    throw err instanceof DeliveryError ? err : classify(err)
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort)
    aborted.catch(() => {})
    transport.close()
  }
}
