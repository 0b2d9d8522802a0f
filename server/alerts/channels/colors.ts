import type { Severity } from '../notice.ts'

/** One colour per severity, for the channels that draw a card (Discord, Teams). */
export const SEVERITY_RGB: Record<Severity, number> = { error: 0xd93025, warning: 0xf29900, success: 0x1e8e3e, info: 0x1a73e8 }
