import t from 'tap'
import { formatAge, formatBytes, formatBytesChange, formatRate, plural } from '../../client/src/lib/format.ts'

const NBSP = '\u00a0'

t.test('sizes and rates are in IEC units, the number bound to its unit by a no-break space', async t => {
  t.equal(formatBytes(512), `512${NBSP}B`)
  t.equal(formatBytes(1536), `1.5${NBSP}KiB`)
  t.equal(formatBytes(5 * 1024 ** 3), `5.0${NBSP}GiB`)
  t.equal(formatRate(300 * 1024 ** 2), `300${NBSP}MiB/s`)
  t.equal(formatBytes(undefined), '—')
})

t.test('counts agree with their noun: 1 backup, 2 backups, 0 backups', async t => {
  t.equal(plural(1, 'backup'), `1${NBSP}backup`)
  t.equal(plural(2, 'backup'), `2${NBSP}backups`)
  t.equal(plural(0, 'backup'), `0${NBSP}backups`)
  t.equal(plural(3, 'entry', 'entries'), `3${NBSP}entries`)
})

t.test('ages and size changes read as a person would say them', async t => {
  t.equal(formatAge(20), 'just now')
  t.equal(formatAge(5 * 60), `5${NBSP}min ago`)
  t.equal(formatAge(3 * 3600), `3${NBSP}h ago`)
  t.equal(formatAge(3 * 86400), `3${NBSP}days ago`)
  t.equal(formatAge(2 * 86400), `2${NBSP}days ago`)
  t.equal(formatBytesChange(0), 'no change')
  t.equal(formatBytesChange(2048), `+2.0${NBSP}KiB`)
  t.equal(formatBytesChange(-2048), `\u22122.0${NBSP}KiB`)
})
