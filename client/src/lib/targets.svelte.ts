/** The configured targets, loaded once per page load and shared by every target select (the list probes each target). */
import type { TargetInfo } from '../../../schemas/targets.ts'
import { api, ApiError } from './api.ts'

class Targets {
  items = $state<TargetInfo[] | null>(null)
  error = $state('')
  #loading: Promise<void> | undefined

  load (force = false): Promise<void> {
    if (this.#loading && !force) return this.#loading
    this.#loading = api.listTargets().then(
      t => { this.items = t; this.error = '' },
      (err: ApiError) => { this.error = `${err.code}: ${err.message}`; this.#loading = undefined },
    )
    return this.#loading
  }
}

export const targets = new Targets()
