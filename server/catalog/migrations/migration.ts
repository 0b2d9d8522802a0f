/** One step of the catalog's schema: run once, in version order, recorded in pgkeep.schema_version. */
export interface Migration {
  version: number
  name: string
  sql: string
}
