import { Type, type Static, type TSchema } from 'typebox'
import { TARGET_NAME_PATTERN } from './backup.ts'

/**
 * What a notification channel can be told about (docs/notifications.md). The first four are the names the
 * generic webhook has always sent; `backup.succeeded` and `restore.finished` are opt-in.
 */
export const NotificationEvent = Type.Union([
  Type.Literal('backup.failed'), Type.Literal('backup.warning'), Type.Literal('validation.failed'), Type.Literal('schedule.missed'),
  Type.Literal('backup.succeeded'), Type.Literal('target.stale'), Type.Literal('drill.failed'), Type.Literal('storage.low'),
  Type.Literal('restore.finished'),
])
export type NotificationEvent = Static<typeof NotificationEvent>
/** every event, in the order the docs list them */
export const NOTIFICATION_EVENTS = [
  'backup.failed', 'backup.warning', 'validation.failed', 'schedule.missed',
  'backup.succeeded', 'target.stale', 'drill.failed', 'storage.low', 'restore.finished',
] as const satisfies readonly NotificationEvent[]

/** A channel that lists no `events` gets these: every problem, nothing that only says all went well. */
export const DEFAULT_NOTIFICATION_EVENTS: readonly NotificationEvent[] = NOTIFICATION_EVENTS.filter(e => e !== 'backup.succeeded' && e !== 'restore.finished')

export const ChannelType = Type.Union([
  Type.Literal('webhook'), Type.Literal('slack'), Type.Literal('discord'), Type.Literal('teams'),
  Type.Literal('telegram'), Type.Literal('ntfy'), Type.Literal('email'),
])
export type ChannelType = Static<typeof ChannelType>

/**
 * Fields every channel has. Every string field may say `${ENV_NAME}` (replaced from the environment at
 * start-up); secrets may also come from a file (`urlFile`, `passwordFile`, ...), so the config holds none.
 */
const common = {
  name: Type.String({ pattern: TARGET_NAME_PATTERN }),
  events: Type.Optional(Type.Array(NotificationEvent, { minItems: 1 })),
  /** one delivery attempt may take this long (default 10) */
  timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 300 })),
}

/** Where an HTTP channel posts: the URL (it often is the secret), or a file holding it. */
const urlFields = {
  url: Type.Optional(Type.String({ minLength: 1 })),
  urlFile: Type.Optional(Type.String({ minLength: 1 })),
}

const channel = <T extends string, P extends Record<string, TSchema>>(type: T, props: P) =>
  Type.Object({ ...common, type: Type.Literal(type), ...props }, { additionalProperties: false })

export const WebhookChannelConfig = channel('webhook', {
  ...urlFields,
  /** extra request headers (e.g. Authorization: "Bearer ${HOOK_TOKEN}") */
  headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String())),
})
export const SlackChannelConfig = channel('slack', urlFields)
export const DiscordChannelConfig = channel('discord', urlFields)
export const TeamsChannelConfig = channel('teams', {
  ...urlFields,
  /** adaptive: a Workflows (Power Automate) webhook; messagecard: a legacy Office 365 connector */
  format: Type.Optional(Type.Union([Type.Literal('adaptive'), Type.Literal('messagecard')])),
})
export const TelegramChannelConfig = channel('telegram', {
  botToken: Type.Optional(Type.String({ minLength: 1 })),
  botTokenFile: Type.Optional(Type.String({ minLength: 1 })),
  chatId: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]),
  /** default https://api.telegram.org (a local Bot API server, or a test receiver) */
  apiUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
})
export const NtfyChannelConfig = channel('ntfy', {
  /** the topic's URL, e.g. https://ntfy.sh/pgkeep-alerts */
  ...urlFields,
  token: Type.Optional(Type.String({ minLength: 1 })),
  tokenFile: Type.Optional(Type.String({ minLength: 1 })),
  username: Type.Optional(Type.String({ minLength: 1 })),
  password: Type.Optional(Type.String({ minLength: 1 })),
  passwordFile: Type.Optional(Type.String({ minLength: 1 })),
})
export const EmailChannelConfig = channel('email', {
  host: Type.String({ minLength: 1 }),
  /** default 587 (starttls), 465 (implicit), 25 (none) */
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  /** starttls (default): plain connection upgraded, refused if the server cannot; implicit: TLS from the start; none: a trusted local relay */
  tls: Type.Optional(Type.Union([Type.Literal('starttls'), Type.Literal('implicit'), Type.Literal('none')])),
  username: Type.Optional(Type.String({ minLength: 1 })),
  password: Type.Optional(Type.String({ minLength: 1 })),
  passwordFile: Type.Optional(Type.String({ minLength: 1 })),
  from: Type.String({ minLength: 3 }),
  to: Type.Array(Type.String({ minLength: 3 }), { minItems: 1 }),
  /** default "[pgkeep]" */
  subjectPrefix: Type.Optional(Type.String()),
})

/** Each channel type's full schema; the config loader checks an entry against the one its `type` names. */
export const CHANNEL_CONFIGS = {
  webhook: WebhookChannelConfig,
  slack: SlackChannelConfig,
  discord: DiscordChannelConfig,
  teams: TeamsChannelConfig,
  telegram: TelegramChannelConfig,
  ntfy: NtfyChannelConfig,
  email: EmailChannelConfig,
} satisfies Record<ChannelType, TSchema>

/**
 * One entry of the config file's `notifications` as the file's schema sees it: a name and a known type. The rest
 * is checked against that type's schema alone, so a mistake is reported for the channel it is in, not as the
 * failure of every branch of a union.
 */
export const NotificationChannelEntry = Type.Object({
  name: Type.String({ pattern: TARGET_NAME_PATTERN }),
  type: ChannelType,
}, { additionalProperties: true })

export type WebhookChannelConfig = Static<typeof WebhookChannelConfig>
export type SlackChannelConfig = Static<typeof SlackChannelConfig>
export type DiscordChannelConfig = Static<typeof DiscordChannelConfig>
export type TeamsChannelConfig = Static<typeof TeamsChannelConfig>
export type TelegramChannelConfig = Static<typeof TelegramChannelConfig>
export type NtfyChannelConfig = Static<typeof NtfyChannelConfig>
export type EmailChannelConfig = Static<typeof EmailChannelConfig>

/** A channel as the API shows it: never its URL, token or password. */
export const NotificationChannelInfo = Type.Object({
  name: Type.String(),
  type: ChannelType,
  events: Type.Array(NotificationEvent),
  /** where it goes, secrets left out: the URL's host, the chat id, the mail recipients */
  destination: Type.String(),
})
export type NotificationChannelInfo = Static<typeof NotificationChannelInfo>

export const NotificationChannelList = Type.Object({ items: Type.Array(NotificationChannelInfo) })
export type NotificationChannelList = Static<typeof NotificationChannelList>

export const NotificationChannelParams = Type.Object({ name: Type.String({ pattern: TARGET_NAME_PATTERN }) }, { additionalProperties: false })

/** The outcome of one delivery attempt (the "send test message" action). */
export const DeliveryResult = Type.Object({
  name: Type.String(),
  type: ChannelType,
  ok: Type.Boolean(),
  durationMs: Type.Integer({ minimum: 0 }),
  /** why it was not delivered: the service's status and answer, or the network error; never a secret */
  error: Type.Optional(Type.String()),
})
export type DeliveryResult = Static<typeof DeliveryResult>
