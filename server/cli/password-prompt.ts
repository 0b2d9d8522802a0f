import { UsageError, type CliIO } from './command.ts'

/** All of stdin, minus one trailing newline (what `echo pw | pgkeep user add … --password-stdin` sends). */
export async function readPasswordFromStdin (io: CliIO): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string))
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (!text) throw new UsageError('--password-stdin: stdin was empty')
  return text
}

/** Reads one line from a TTY in raw mode so nothing is echoed. */
function promptHidden (io: CliIO, question: string): Promise<string> {
  const stdin = io.stdin as NodeJS.ReadStream
  io.stderr.write(question)
  return new Promise((resolve, reject) => {
    let value = ''
    const done = (err?: Error): void => {
      stdin.off('data', onData)
      stdin.setRawMode?.(false)
      stdin.pause()
      io.stderr.write('\n')
      if (err) reject(err)
      else resolve(value)
    }
    const onData = (data: Buffer | string): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003') return done(new UsageError('cancelled'))
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else value += ch
      }
    }
    stdin.setRawMode?.(true)
    stdin.resume()
    stdin.on('data', onData)
  })
}

/** A password from stdin (--password-stdin) or an interactive prompt asked twice; never from argv. */
export async function readNewPassword (io: CliIO, fromStdin: boolean): Promise<string> {
  if (fromStdin) return await readPasswordFromStdin(io)
  const stdin = io.stdin as NodeJS.ReadStream
  if (!stdin.isTTY) throw new UsageError('no terminal to ask for the password: pipe it with --password-stdin')
  const first = await promptHidden(io, 'Password: ')
  const second = await promptHidden(io, 'Repeat password: ')
  if (first !== second) throw new UsageError('the passwords do not match')
  return first
}
