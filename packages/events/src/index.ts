export { eventsErrors } from './errors.js'
export type { EventsErrorCode } from './errors.js'
export { eventsMigrations } from './migrations.js'
export {
  DEFAULT_INGEST_LIMITS,
  PROJECT_STORE_DEFAULTS,
  resolveIngestLimits,
  SESSION_DEFAULTS,
  WRITER_DEFAULTS,
} from './options.js'
export type { IngestLimits, ResolvedIngestLimits } from './options.js'
export type {
  ActivityRow,
  DeviceType,
  EventRow,
  LoginRow,
  SegmentRow,
  SegmentType,
  WriteOutcome,
} from './types.js'
export { DEVICE_TYPES, SEGMENT_TYPES } from './types.js'
export { EventValidator } from './validation/event-validator.js'
export type {
  EventValidatorOptions,
  IngestContext,
  ValidationResult,
} from './validation/event-validator.js'
export { checkJsonValue, isStorableString } from './validation/json-guard.js'
export { checkEnvelope, ingestBatch, ingestEventsBatch, ingestOne } from './ingest/batch.js'
export type { BatchAnswer, IngestTarget } from './ingest/batch.js'
export { ingestSegmentBatch, ingestSegmentMessage } from './ingest/segment.js'
export { parseIsoTimestamp } from './validation/timestamp.js'
export { UserAgentParser } from './enrichment/user-agent-parser.js'
export type { ParsedUserAgent } from './enrichment/user-agent-parser.js'
export { GroupCommitWriter, WRITER_MAINTENANCE_LOCK } from './writer/group-commit-writer.js'
export type {
  GroupCommitWriterOptions,
  MaintenanceResult,
  RowResult,
  WriterStats,
} from './writer/group-commit-writer.js'
export { PartitionManager, PARTITIONED_TABLES } from './writer/partitions.js'
export { ProjectStore } from './tenancy/project-store.js'
export type {
  ApiKeyInfo,
  KeyPrincipal,
  Project,
  ProjectStoreOptions,
} from './tenancy/project-store.js'
export { keyPrefix, safeEqual } from './tenancy/api-key.js'
export type { KeyKind } from './tenancy/api-key.js'
export { SESSION_CLEANUP_LOCK, SessionStore } from './sessions/session-store.js'
export type {
  CreateSessionInput,
  Session,
  SessionCache,
  SessionStoreOptions,
} from './sessions/session-store.js'
export { AnalyticsQueries } from './analytics/analytics-queries.js'
export { NO_ENTITY_TYPE } from './analytics/answers.js'
export type {
  ActiveUsers,
  ActivityAnalytics,
  LoginAnalytics,
  LoginSeriesPoint,
  Page,
  RangeEcho,
  RecentLogin,
  RecentLoginsFilter,
  SessionAnalytics,
  UserActivityItem,
} from './analytics/answers.js'
export { analyticsErrors } from './analytics/errors.js'
export type { AnalyticsErrorCode } from './analytics/errors.js'
export { ANALYTICS_DEFAULTS, resolveAnalyticsOptions } from './analytics/options.js'
export type { AnalyticsOptions, ResolvedAnalyticsOptions } from './analytics/options.js'
export {
  ACTIVITY_GROUP_BY,
  encodeCursor,
  INTERVALS,
  parseCursor,
  parseFlag,
  parseGroupBy,
  parseLimit,
  parseRange,
  parseSeries,
} from './analytics/params.js'
export type {
  ActivityGroupBy,
  Cursor,
  Interval,
  RangeParams,
  SeriesParams,
} from './analytics/params.js'
export { isoInZone, isSupportedTimeZone, parseTimeZone } from './analytics/time-zone.js'
export { seedEvents } from './analytics/seed-events.js'
export type { SeedOptions, SeedResult } from './analytics/seed-events.js'
