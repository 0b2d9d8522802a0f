/**
 * A table's name as row counts record it and a drill compares it: schema and table each in double quotes,
 * inner quotes doubled. Always quoted, so one spelling per table whatever its characters.
 */
export const qualifiedName = (schema: string, table: string): string => `"${schema.replace(/"/g, '""')}"."${table.replace(/"/g, '""')}"`
