import type { ReactNode } from 'react'

interface KpiProps {
  label: string
  value: string
  testId?: string
  sub?: ReactNode
  tone?: 'good' | 'bad' | undefined
}

/** One headline figure; data-testid sits on the number alone so that it reads as one. */
export function Kpi({ label, value, testId, sub, tone }: KpiProps) {
  return (
    <div className="kpi">
      <span className="kpi-label">{label}</span>
      <span className={`kpi-value${tone ? ` tone-${tone}` : ''}`} data-testid={testId}>
        {value}
      </span>
      {sub ? <span className="kpi-sub">{sub}</span> : null}
    </div>
  )
}
