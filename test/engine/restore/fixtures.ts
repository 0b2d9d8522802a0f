import { isPgkeepError, type PgkeepError } from '../../../server/errors.ts'

/** The PgkeepError a restore (or its plan) failed with; anything else, or success, fails the test. */
export async function rejection (p: Promise<unknown>): Promise<PgkeepError> {
  try {
    await p
  } catch (err) {
    if (isPgkeepError(err)) return err
    throw err
  }
  throw new Error('expected the restore to fail')
}
