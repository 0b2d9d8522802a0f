/** light / dark: the system's choice (prefers-color-scheme) unless the user picked one, which is remembered. */
export type ThemeChoice = 'system' | 'light' | 'dark'
const KEY = 'pgkeep.theme'

function stored (): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY)
    return v === 'light' || v === 'dark' ? v : 'system'
  } catch { return 'system' }
}

const media = matchMedia('(prefers-color-scheme: dark)')

class Theme {
  choice = $state<ThemeChoice>(stored())
  #systemDark = $state(media.matches)
  /** what is shown now */
  readonly effective = $derived<'light' | 'dark'>(this.choice === 'system' ? (this.#systemDark ? 'dark' : 'light') : this.choice)

  constructor () {
    media.addEventListener('change', e => { this.#systemDark = e.matches })
    $effect.root(() => {
      // index.html sets the attribute before the first paint (no flash); this keeps it in step afterwards
      $effect(() => { document.documentElement.dataset.theme = this.effective })
    })
  }

  /** system → the opposite of what is shown → back to system when that matches it again */
  toggle (): void {
    const next = this.effective === 'dark' ? 'light' : 'dark'
    this.choice = next === (this.#systemDark ? 'dark' : 'light') ? 'system' : next
    try {
      if (this.choice === 'system') localStorage.removeItem(KEY)
      else localStorage.setItem(KEY, this.choice)
    } catch { /* private mode: the choice lasts for this page */ }
  }
}

export const theme = new Theme()
