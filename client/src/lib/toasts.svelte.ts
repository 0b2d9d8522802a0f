export type ToastKind = 'success' | 'error' | 'info'
export interface Toast { id: number, kind: ToastKind, title: string, detail?: string, count: number }

/** at most this many at once: older ones give way, so notifications never pile up over the page */
const MAX_SHOWN = 3

/** Notifications; errors stay until dismissed (or pushed out by newer ones) so a failure is never silent. */
class Toasts {
  items = $state<Toast[]>([])
  #next = 1

  push (kind: ToastKind, title: string, detail?: string): void {
    // the same message again (a retried action, a burst of events) counts up instead of stacking
    const same = this.items.find(t => t.kind === kind && t.title === title && t.detail === detail)
    if (same) { same.count++; return }
    const id = this.#next++
    this.items = [...this.items, { id, kind, title, detail, count: 1 }].slice(-MAX_SHOWN)
    if (kind !== 'error') setTimeout(() => this.dismiss(id), 8000)
  }

  dismiss (id: number): void {
    this.items = this.items.filter(t => t.id !== id)
  }
}

export const toasts = new Toasts()
