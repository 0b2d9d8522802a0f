import { execFile } from 'node:child_process'
import { chownSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { execFileSync } from 'node:child_process'
import type { Target } from '../../../server/config.ts'
import type { TestCluster } from '../../helpers/pg-cluster.ts'

const run = promisify(execFile)

/** A directory the server may use as a tablespace: owned by postgres when the tests run as root (the server then runs as postgres). */
export function tablespaceDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-ts-'))
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    chownSync(dir, uid, gid)
  }
  return dir
}

/** A configured target for another test cluster (a restore destination). */
export function targetFor (cluster: TestCluster, name: string): Target {
  return { name, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'postgres', lockWaitTimeoutSeconds: 60 }
}

/** pg_dump's and pg_dumpall's \restrict keys are random per run: not part of what is compared. */
const stripRestrict = (text: string): string => text.split('\n').filter(l => !/^\\(un)?restrict /.test(l)).join('\n')

async function tool (cluster: TestCluster, name: string, args: string[]): Promise<string> {
  const { stdout } = await run(join(cluster.binDir, name), [...args, '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres'], { maxBuffer: 64 * 1024 * 1024 })
  return stripRestrict(stdout)
}

/** Roles, role attributes, memberships and tablespaces as pg_dumpall writes them (passwords left out). */
export async function globalsOf (cluster: TestCluster): Promise<string> {
  return await tool(cluster, 'pg_dumpall', ['--globals-only', '--no-role-passwords'])
}

/** One database's definition with owners, grants, its CREATE DATABASE (tablespace, settings). */
export async function schemaOf (cluster: TestCluster, db: string): Promise<string> {
  return await tool(cluster, 'pg_dump', ['--schema-only', '--create', '-d', db])
}
