import { spawn, type ChildProcess } from 'node:child_process'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { CliIO } from '../../server/cli/command.ts'

export const BIN = fileURLToPath(new URL('../../bin/pgkeep.js', import.meta.url))

export interface CliResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** The real CLI as a child process; env is exactly what is given (plus PATH), so the host's PG* vars never leak in. */
export function spawnCli (args: string[], env: Record<string, string> = {}, opts: { detached?: boolean } = {}): { child: ChildProcess, result: Promise<CliResult>, stderrText: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached,
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const result = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, result, stderrText: () => stderr }
}

/** The URL a spawned `pgkeep serve` prints once it listens; rejects if the process ends first. */
export function listeningUrl (server: { child: ChildProcess, stderrText: () => string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(server.stderrText())
      if (m) { server.child.stderr?.off('data', onData); resolve(m[1]) }
    }
    server.child.stderr?.on('data', onData)
    server.child.once('close', () => reject(new Error(`serve ended before listening: ${server.stderrText()}`)))
  })
}

export async function runCli (args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return await spawnCli(args, env).result
}

/** An in-memory CliIO for in-process dispatch tests. */
export function memoryIO (env: NodeJS.ProcessEnv = {}, isTTY = false): CliIO & { out: () => string, err: () => string } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d: Buffer) => { out += d.toString() })
  stderr.on('data', (d: Buffer) => { err += d.toString() })
  return { stdout, stderr, stdin: new PassThrough(), isTTY, env, out: () => out, err: () => err }
}
