// Light or dark: the system's preference until the user picks one with "Toggle theme".
export type Theme = 'light' | 'dark'
const STORAGE = 'strata.theme'

export function initialTheme(): Theme {
  try {
    const saved = window.localStorage.getItem(STORAGE)
    if (saved === 'light' || saved === 'dark') return saved
  } catch {
    // storage disabled: follow the system
  }
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

export function applyTheme(theme: Theme, remember = false): void {
  document.documentElement.dataset.theme = theme
  if (remember)
    try {
      window.localStorage.setItem(STORAGE, theme)
    } catch {
      // not remembered; still applied
    }
}
