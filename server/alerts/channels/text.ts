/** At most `n` characters, an ellipsis marking the cut: every service refuses a field over its limit. */
export function cut (s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}

/** &, < and > are markup to Slack's mrkdwn (links, mentions) and Telegram's HTML: an error message must not become markup. */
export function escapeMarkup (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
