import type { ReactNode } from 'react'

/**
 * A table's horizontal scroller (narrow screens): a named region that takes the focus, so
 * keyboard users can scroll it too.
 */
export function TableWrap({
  label,
  card = false,
  children,
}: {
  label: string
  card?: boolean
  children: ReactNode
}) {
  return (
    <div
      className={card ? 'card table-wrap' : 'table-wrap'}
      role="region"
      aria-label={label}
      tabIndex={0}
    >
      {children}
    </div>
  )
}
