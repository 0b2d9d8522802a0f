import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { TSchema } from 'typebox'
import { compileOnUse } from './compile-on-use.ts'
import type { ConfigFile } from '../schemas/config.ts'
import {
  CHANNEL_CONFIGS, DEFAULT_NOTIFICATION_EVENTS, type ChannelType, type NotificationEvent,
} from '../schemas/notifications.ts'
import { PgkeepError } from './errors.ts'
import { describeSchemaErrors } from './config-problems.ts'

/** What every channel has once its config is read: secrets resolved, defaults applied. */
interface ChannelBase {
  name: string
  events: NotificationEvent[]
  /** one delivery attempt may take this long */
  timeoutMs: number
}

/** A notification channel ready to send (server/alerts/channels). Its secrets live only here and in the requests. */
export type ChannelConfig = ChannelBase & (
  | { type: 'webhook', url: string, headers: Record<string, string> }
  | { type: 'slack', url: string }
  | { type: 'discord', url: string }
  | { type: 'teams', url: string, format: 'adaptive' | 'messagecard' }
  | { type: 'telegram', botToken: string, chatId: string, apiUrl: string }
  | { type: 'ntfy', url: string, token?: string, username?: string, password?: string }
  | {
    type: 'email', host: string, port: number, tls: 'starttls' | 'implicit' | 'none',
    username?: string, password?: string, from: string, to: string[], subjectPrefix: string
  }
)

export interface NotificationsConfig {
  channels: ChannelConfig[]
  /** how often target staleness and free space are looked at */
  checkIntervalMs: number
}

const DEFAULT_TIMEOUT_SECONDS = 10
const DEFAULT_CHECK_MINUTES = 5
// compiled when a config names a channel of that type: every command loads this module, few configure channels
const checkers = Object.fromEntries(Object.entries(CHANNEL_CONFIGS).map(([type, schema]) => [type, compileOnUse(schema as TSchema)])) as
  Record<ChannelType, ReturnType<typeof compileOnUse>>

function fail (name: string, why: string): never {
  throw new PgkeepError('CONFIG_INVALID', `invalid configuration: ${name}: ${why}`)
}

/**
 * `${NAME}` in a string field becomes that environment variable, so a config file can name a secret without
 * holding it. An unset variable is an error (a webhook URL of "" would fail at 2 a.m., not now).
 */
function expandEnv (field: string, text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{([^}]*)\}/g, (_whole, name: string) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(field, `"\${${name}}" is not an environment variable name`)
    const value = env[name]
    if (value === undefined || value === '') fail(field, `environment variable ${name} is not set`)
    return value
  })
}

/** Every string in the entry expanded; the field names in messages are as the admin wrote them. */
function expandAll (prefix: string, value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') return expandEnv(prefix, value, env)
  if (Array.isArray(value)) return value.map((v, i) => expandAll(`${prefix}[${i}]`, v, env))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandAll(`${prefix}.${k}`, v, env)]))
  }
  return value
}

/** A secret given inline or as a file (one of the two, or neither when `optional`); a trailing newline is not part of it. */
function secret (prefix: string, entry: Record<string, unknown>, field: string, baseDir: string, optional: boolean): string | undefined {
  const inline = entry[field] as string | undefined
  const file = entry[`${field}File`] as string | undefined
  if (inline !== undefined && file !== undefined) fail(`${prefix}.${field}File`, `give ${field} or ${field}File, not both`)
  if (file !== undefined) {
    let text: string
    try {
      text = readFileSync(resolve(baseDir, file), 'utf8').replace(/\r?\n$/, '')
    } catch {
      fail(`${prefix}.${field}File`, `${resolve(baseDir, file)} cannot be read`)
    }
    if (text === '') fail(`${prefix}.${field}File`, `${resolve(baseDir, file)} is empty`)
    return text
  }
  if (inline === undefined && !optional) fail(prefix, `is missing "${field}" (or "${field}File")`)
  return inline
}

/** A URL the channel posts to; checked here so a typo stops the start. The URL itself is never echoed: it may be the secret. */
function httpUrl (field: string, url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    fail(field, 'is not a valid URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(field, 'must be an http:// or https:// URL')
  return url
}

const ADDRESS = /^[^\s@<>]+@[^\s@<>]+$/
/** `ops@example.com` or `pgkeep <ops@example.com>` */
function mailbox (field: string, text: string): string {
  const bare = /<([^>]*)>\s*$/.exec(text)?.[1] ?? text
  if (!ADDRESS.test(bare.trim())) fail(field, `"${text}" is not an e-mail address`)
  return text
}

function channelConfig (prefix: string, raw: Record<string, unknown>, env: NodeJS.ProcessEnv, baseDir: string): ChannelConfig {
  const type = raw.type as ChannelType
  const checker = checkers[type]
  if (!checker.Check(raw)) {
    const problem = describeSchemaErrors([...checker.Errors(raw)])
    fail(problem.field ? `${prefix}.${problem.field}` : prefix, problem.why)
  }
  const entry = expandAll(prefix, raw, env) as Record<string, unknown>
  const base: ChannelBase = {
    name: entry.name as string,
    events: [...new Set((entry.events as NotificationEvent[] | undefined) ?? DEFAULT_NOTIFICATION_EVENTS)],
    timeoutMs: ((entry.timeoutSeconds as number | undefined) ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
  }
  const url = (): string => httpUrl(`${prefix}.url`, secret(prefix, entry, 'url', baseDir, false)!)
  switch (type) {
    case 'webhook':
      return { ...base, type, url: url(), headers: (entry.headers as Record<string, string> | undefined) ?? {} }
    case 'slack':
      return { ...base, type, url: url() }
    case 'discord':
      return { ...base, type, url: url() }
    case 'teams':
      return { ...base, type, url: url(), format: (entry.format as 'adaptive' | 'messagecard' | undefined) ?? 'adaptive' }
    case 'telegram':
      return {
        ...base,
        type,
        botToken: secret(prefix, entry, 'botToken', baseDir, false)!,
        chatId: String(entry.chatId),
        apiUrl: httpUrl(`${prefix}.apiUrl`, ((entry.apiUrl as string | undefined) ?? 'https://api.telegram.org').replace(/\/+$/, '')),
      }
    case 'ntfy': {
      const token = secret(prefix, entry, 'token', baseDir, true)
      const password = secret(prefix, entry, 'password', baseDir, true)
      const username = entry.username as string | undefined
      if (token !== undefined && username !== undefined) fail(`${prefix}.token`, 'give an access token or a username and password, not both')
      if ((username === undefined) !== (password === undefined)) fail(`${prefix}.${username === undefined ? 'username' : 'password'}`, 'a username needs a password and a password a username')
      return { ...base, type, url: url(), ...(token ? { token } : {}), ...(username ? { username, password } : {}) }
    }
    case 'email': {
      const tls = (entry.tls as 'starttls' | 'implicit' | 'none' | undefined) ?? 'starttls'
      const password = secret(prefix, entry, 'password', baseDir, true)
      const username = entry.username as string | undefined
      if ((username === undefined) !== (password === undefined)) fail(`${prefix}.${username === undefined ? 'username' : 'password'}`, 'a username needs a password and a password a username')
      return {
        ...base,
        type,
        host: entry.host as string,
        port: (entry.port as number | undefined) ?? { starttls: 587, implicit: 465, none: 25 }[tls],
        tls,
        ...(username ? { username, password } : {}),
        from: mailbox(`${prefix}.from`, entry.from as string),
        to: (entry.to as string[]).map((to, i) => mailbox(`${prefix}.to[${i}]`, to)),
        subjectPrefix: (entry.subjectPrefix as string | undefined) ?? '[pgkeep]',
      }
    }
  }
}

/**
 * The config file's `notifications` read and checked whole at start-up: each entry against its type's schema,
 * `${ENV}` expanded, secret files read, names unique. A problem names the field (`notifications[1].chatId: ...`)
 * and never a secret's value.
 */
export function notificationsConfig (env: NodeJS.ProcessEnv, file: ConfigFile, baseDir: string): NotificationsConfig {
  const seen = new Set<string>()
  const channels = (file.notifications ?? []).map((raw, i) => {
    const prefix = `notifications[${i}]`
    if (seen.has(raw.name)) fail(`${prefix}.name`, `"${raw.name}" is used by an earlier channel`)
    // the plain `webhooks` list becomes channels named webhooks-1, webhooks-2, ... (alerts/notifier.ts)
    const legacy = /^webhooks-(\d+)$/.exec(raw.name)
    if (legacy && Number(legacy[1]) >= 1 && Number(legacy[1]) <= (file.webhooks?.length ?? 0)) {
      fail(`${prefix}.name`, `"${raw.name}" is the name of webhooks[${Number(legacy[1]) - 1}]; choose another`)
    }
    seen.add(raw.name)
    return channelConfig(prefix, raw as Record<string, unknown>, env, baseDir)
  })
  return {
    channels,
    checkIntervalMs: (file.notificationCheckMinutes ?? DEFAULT_CHECK_MINUTES) * 60_000,
  }
}
