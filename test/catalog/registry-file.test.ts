import t from 'tap'
import { Registry } from '../../server/engine/store/registry.ts'
import { tempDir } from '../engine/store/fixtures.ts'
import { registryConformance } from './registry-conformance.ts'

// The file catalog: registry.json under its lock file. Two processes on one dir: test/engine/store/file-lock.test.ts.
registryConformance(t, {
  name: 'file',
  pushes: false,
  fresh: async t => {
    const backupDir = tempDir(t)
    return { backupDir, open: async () => await Registry.open(backupDir) }
  },
})
