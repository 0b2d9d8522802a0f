/** A minute past the hour, n hours before the current one: exactly n hourly runs fell due since, whatever the clock says now. */
export function hoursBeforeThisHour (n: number): Date {
  const d = new Date()
  d.setUTCMinutes(1, 0, 0)
  return new Date(d.getTime() - n * 3600_000)
}
