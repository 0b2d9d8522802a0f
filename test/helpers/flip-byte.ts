import { closeSync, openSync, readSync, writeSync } from 'node:fs'

/** Damages a stored backup the way bit rot would: one byte inverted in place, the size unchanged. */
export function flipByte (file: string, at: number): void {
  const fd = openSync(file, 'r+')
  const byte = Buffer.alloc(1)
  readSync(fd, byte, 0, 1, at)
  byte[0] ^= 0xff
  writeSync(fd, byte, 0, 1, at)
  closeSync(fd)
}
