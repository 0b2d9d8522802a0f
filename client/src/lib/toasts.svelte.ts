export type ToastKind = 'success' | 'error' | 'info'
export interface Toast { id: number, kind: ToastKind, title: string, detail?: string }

/** Notifications; errors stay until dismissed so a failure is never silent. */
class Toasts {
  items = $state<Toast[]>([])
  #next = 1

  push (kind: ToastKind, title: string, detail?: string): void {
    const id = this.#next++
    this.items.push({ id, kind, title, detail })
    if (kind !== 'error') setTimeout(() => this.dismiss(id), 8000)
  }

  dismiss (id: number): void {
    this.items = this.items.filter(t => t.id !== id)
  }
}

export const toasts = new Toasts()
