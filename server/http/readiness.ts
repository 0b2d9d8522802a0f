import { randomBytes } from 'node:crypto'
import { rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ReadinessCheck } from '../../schemas/health.ts'
import type { Config } from '../config.ts'
import { toPgkeepError } from '../errors.ts'
import { findPgTool } from '../engine/pg/tools.ts'
import { checkDumpCompatible } from '../engine/pg/inspector.ts'
import { versionFromNum, withTargetClient } from '../engine/pg/connection.ts'

export interface Readiness { ready: boolean, checks: ReadinessCheck[] }

async function check (name: string, fn: () => Promise<string | undefined>): Promise<ReadinessCheck> {
  try {
    const message = await fn()
    return message === undefined ? { name, ok: true } : { name, ok: true, message }
  } catch (err) {
    return { name, ok: false, message: toPgkeepError(err).message }
  }
}

/**
 * Can this instance take a backup right now: every target reachable with a pg_dump able to dump it, the
 * backups dir writable, free space above the threshold. Each failure is named so an operator knows what to fix.
 */
export async function checkReadiness (config: Config): Promise<Readiness> {
  const pgDump = findPgTool('pg_dump', config.pgBinDir)
  const checks = await Promise.all([
    check('pg_dump', async () => `pg_dump ${(await pgDump).version}`),
    ...Object.values(config.targets).map(target => check(`target:${target.name}`, async () => {
      const num = await withTargetClient(target, async c => Number((await c.query('SHOW server_version_num')).rows[0].server_version_num))
      const server = versionFromNum(num)
      checkDumpCompatible((await pgDump).major, server.major)
      return `PostgreSQL ${server.version}`
    })),
    check('backupDir:writable', async () => {
      const probe = join(config.backupDir, `.ready-${process.pid}-${randomBytes(4).toString('hex')}`)
      await writeFile(probe, '')
      await rm(probe, { force: true })
      return undefined
    }),
    check('backupDir:freeSpace', async () => {
      const fs = await statfs(config.backupDir)
      const free = fs.bavail * fs.bsize
      if (free < config.minFreeBytes) throw new Error(`only ${free} bytes free on the backups volume; at least ${config.minFreeBytes} required`)
      return `${free} bytes free`
    }),
  ])
  return { ready: checks.every(c => c.ok), checks }
}
