interface Point { t: number, v: number }

const WINDOW_MS = 5000
// points closer together than this are merged, so a fast job does not pile up thousands of them
const POINT_SPACING_MS = 100

/** A series of (time, cumulative value) pairs answering "how fast over the last few seconds". */
export class SlidingRate {
  private readonly points: Point[]

  constructor (start: number) {
    this.points = [{ t: start, v: 0 }]
  }

  record (t: number, v: number): void {
    const p = this.points
    if (p.length >= 2 && t - p[p.length - 2].t < POINT_SPACING_MS) p[p.length - 1] = { t, v }
    else p.push({ t, v })
    this.prune(t)
  }

  /** units per second between the start of the window (interpolated) and now */
  perSecond (now: number): number {
    this.prune(now)
    const p = this.points
    const from = now - WINDOW_MS
    const last = p[p.length - 1]
    let base = p[0]
    if (base.t < from) {
      // the value at the window's start lies between the two oldest points we kept
      const next = p[1]
      base = next === undefined ? { t: from, v: base.v } : { t: from, v: base.v + (next.v - base.v) * (from - base.t) / (next.t - base.t) }
    }
    const seconds = (now - base.t) / 1000
    return seconds > 0 ? Math.max(0, (last.v - base.v) / seconds) : 0
  }

  // keeps exactly one point at or before the window's start, to interpolate from
  private prune (now: number): void {
    const from = now - WINDOW_MS
    while (this.points.length >= 2 && this.points[1].t <= from) this.points.shift()
  }
}

