/** Device classes stored in `device_type`. */
export type DeviceType = 'desktop' | 'mobile' | 'tablet' | 'bot' | 'unknown'
export const DEVICE_TYPES: readonly DeviceType[] = ['desktop', 'mobile', 'tablet', 'bot', 'unknown']

/** Segment message types accepted by the Segment-compatible routes. */
export type SegmentType = 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias'
export const SEGMENT_TYPES: readonly SegmentType[] = [
  'track',
  'identify',
  'page',
  'screen',
  'group',
  'alias',
]

interface RowBase {
  projectId: string
  messageId: string
  /** Event time after clock-skew correction, epoch ms. */
  ts: number
  /** Server receive time, epoch ms. */
  receivedAt: number
}

/** A validated, enriched login ready for `login_events`. */
export interface LoginRow extends RowBase {
  kind: 'login'
  userId: string
  email: string | null
  method: string
  success: boolean
  failureReason: string | null
  sessionId: string | null
  ip: string | null
  deviceType: DeviceType
  browser: string | null
  os: string | null
  userAgent: string | null
}

/** A validated activity ready for `activity_logs`. */
export interface ActivityRow extends RowBase {
  kind: 'activity'
  userId: string
  sessionId: string | null
  action: string
  entityType: string | null
  entityId: string | null
  metadata: unknown
}

/** A validated Segment-style message ready for `events`. */
export interface SegmentRow extends RowBase {
  kind: 'event'
  type: SegmentType
  name: string | null
  userId: string | null
  anonymousId: string | null
  properties: unknown
  context: unknown
}

export type EventRow = LoginRow | ActivityRow | SegmentRow

/** What happened to one row handed to the writer. */
export type WriteOutcome = 'inserted' | 'duplicate'
