import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'

type Compiled<T extends TSchema> = ReturnType<typeof Compile<T>>

/**
 * A schema checker compiled the first time it checks something. Compile generates and evaluates code (a few ms
 * per schema); at module level it runs for every CLI command that merely imports the module (`pgkeep list`
 * never checks a create request or a retention policy).
 */
export function compileOnUse<T extends TSchema> (schema: T): Pick<Compiled<T>, 'Check' | 'Errors'> {
  let compiled: Compiled<T> | undefined
  const get = (): Compiled<T> => (compiled ??= Compile(schema) as Compiled<T>)
  return {
    Check: ((value: unknown) => get().Check(value)) as Compiled<T>['Check'],
    Errors: ((value: unknown) => get().Errors(value)) as Compiled<T>['Errors'],
  }
}
