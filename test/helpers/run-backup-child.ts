// Runs one slow backup in its own process and reports when bytes flow, so a test can kill -9 it mid-dump.
import { loadConfig } from '../../server/config.ts'
import { BackupService } from '../../server/engine/backup-service.ts'

const service = await BackupService.open(loadConfig(process.env))
const backup = await service.create({ compression: 'zstd', level: 19 }, 'crash-test')
let told = false
service.on('progress', (p) => {
  if (!told && p.bytes > 0) {
    told = true
    process.stdout.write(`RUNNING ${backup.id} ${backup.name}\n`)
  }
})
await service.waitFor(backup.id)
process.stdout.write('FINISHED\n')
