import type { BackupApi } from './backup-api.ts'
import type { CliIO, Globals } from './command.ts'

/**
 * `--server` gives the HTTP API, otherwise the engine on the local backups dir (closed once fn is done, cancelling
 * whatever this process still runs). Each is loaded only when chosen: a remote command needs no engine.
 */
export async function withBackupApi<T> (io: CliIO, globals: Globals, fn: (api: BackupApi) => Promise<T>): Promise<T> {
  if (globals.server) {
    const { RemoteBackupApi } = await import('./remote-client.ts')
    return await fn(new RemoteBackupApi(globals.server, globals.token ?? ''))
  }
  const { LocalBackupApi } = await import('./local-service.ts')
  const api = new LocalBackupApi(io, globals)
  try {
    return await fn(api)
  } finally {
    await api.close()
  }
}
