import { Type, type Static } from 'typebox'

/** Backup ids are UUIDv7: time-ordered, so sorting by id sorts by creation. */
export const BackupId = Type.String({
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
  description: 'UUIDv7 of a backup',
})

export const IsoDateTime = Type.String({ format: 'date-time' })

export const IdParams = Type.Object({ id: BackupId }, { additionalProperties: false })

/** The reply of a DELETE: the id or name of what is gone. */
export const DeletedReply = Type.Object({ deleted: Type.String() })
export type DeletedReply = Static<typeof DeletedReply>
