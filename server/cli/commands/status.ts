import type { Command } from '../command.ts'
import { helpFor, showBackup } from './info.ts'

/** The API calls it status; info and status are the same view so scripts can use either word. */
export const command: Command = {
  name: 'status',
  help: helpFor('status', 'Shows the status of one backup and, while it runs, its live progress (same as pgkeep info)'),
  run: showBackup,
}
