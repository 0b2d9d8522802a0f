/**
 * FIFO of backup jobs with a concurrency limit. Jobs are ids; the runner does the work.
 * Kept apart from BackupService so the ordering rules are testable on their own.
 */
export class JobQueue {
  private readonly waiting: string[] = []
  private readonly running = new Set<string>()

  constructor (private readonly concurrency: number, private readonly runner: (id: string) => Promise<void>) {}

  get queuedCount (): number { return this.waiting.length }
  get runningCount (): number { return this.running.size }
  isRunning (id: string): boolean { return this.running.has(id) }

  enqueue (id: string): void {
    this.waiting.push(id)
    this.pump()
  }

  /** Removes a job that has not started; false when it already runs (or never was queued). */
  dequeue (id: string): boolean {
    const i = this.waiting.indexOf(id)
    if (i === -1) return false
    this.waiting.splice(i, 1)
    return true
  }

  drainWaiting (): string[] {
    return this.waiting.splice(0, this.waiting.length)
  }

  private pump (): void {
    while (this.running.size < this.concurrency && this.waiting.length > 0) {
      const id = this.waiting.shift() as string
      this.running.add(id)
      // the runner records its own failures; the queue only needs to know when a slot frees up
      this.runner(id).catch(() => {}).finally(() => {
        this.running.delete(id)
        this.pump()
      })
    }
  }
}
