-- Time-series tables, range-partitioned by month on ts. Partitions are created ahead by the
-- service (strata_events_ensure_partition) and on demand for backfilled months; there is no
-- DEFAULT partition, because one would have to be scanned every time a month is added.
-- Indexes are kept to the query patterns of DESIGN.md (<= 5 B-trees per table): every index
-- costs each insert, and the writer is the hot path.

CREATE TABLE login_events (
  project_id      uuid NOT NULL,
  ts              timestamptz NOT NULL,
  message_id      text NOT NULL,
  user_id         text NOT NULL,
  email           text,
  method          text NOT NULL,
  success         boolean NOT NULL,
  failure_reason  text,
  session_id      text,
  ip              inet,
  device_type     text NOT NULL,
  browser         text,
  os              text,
  user_agent      text,
  received_at     timestamptz NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX login_events_project_ts_idx ON login_events (project_id, ts DESC);
CREATE INDEX login_events_user_idx ON login_events (project_id, user_id, ts DESC);
CREATE INDEX login_events_success_idx ON login_events (project_id, success, ts DESC);
CREATE INDEX login_events_method_idx ON login_events (project_id, method, ts DESC);

CREATE TABLE activity_logs (
  project_id   uuid NOT NULL,
  ts           timestamptz NOT NULL,
  message_id   text NOT NULL,
  user_id      text NOT NULL,
  session_id   text,
  action       text NOT NULL,
  entity_type  text,
  entity_id    text,
  metadata     jsonb,
  received_at  timestamptz NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX activity_logs_project_ts_idx ON activity_logs (project_id, ts DESC);
CREATE INDEX activity_logs_user_idx ON activity_logs (project_id, user_id, ts DESC);
CREATE INDEX activity_logs_action_idx ON activity_logs (project_id, action, ts DESC);
CREATE INDEX activity_logs_entity_idx ON activity_logs (project_id, entity_type, entity_id, ts DESC);

-- Segment-style messages (track, identify, page, screen, group, alias). `name` is the track
-- event, page/screen name or group id; `properties` holds properties or traits.
CREATE TABLE events (
  project_id    uuid NOT NULL,
  ts            timestamptz NOT NULL,
  message_id    text NOT NULL,
  type          text NOT NULL,
  name          text,
  user_id       text,
  anonymous_id  text,
  properties    jsonb,
  context       jsonb,
  received_at   timestamptz NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX events_project_ts_idx ON events (project_id, ts DESC);
CREATE INDEX events_user_idx ON events (project_id, user_id, ts DESC) WHERE user_id IS NOT NULL;
CREATE INDEX events_name_idx ON events (project_id, type, name, ts DESC);
-- Rows arrive in roughly ts order, so a BRIN on ts answers operator-wide time scans (retention
-- checks, exports across projects) for a few pages of index instead of another B-tree.
CREATE INDEX events_ts_brin ON events USING brin (ts);

-- Exact dedup by (project_id, message_id). Unique indexes on a partitioned table must include
-- the partition key, and a client retry carries the same message id but (after clock-skew
-- correction with a new sentAt) possibly a different ts, so uniqueness cannot live on the
-- event tables. One unpartitioned key table, written in the same transaction as the event row,
-- makes "first write wins" exact across months and across instances.
CREATE TABLE event_dedup (
  project_id  uuid NOT NULL,
  message_id  text NOT NULL,
  ts          timestamptz NOT NULL,
  PRIMARY KEY (project_id, message_id)
);

CREATE TABLE user_sessions (
  project_id        uuid NOT NULL,
  session_id        text NOT NULL,
  user_id           text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  last_activity_at  timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL,
  ended_at          timestamptz,
  ip                inet,
  user_agent        text,
  device_type       text,
  browser           text,
  os                text,
  PRIMARY KEY (project_id, session_id)
);
CREATE INDEX user_sessions_user_idx ON user_sessions (project_id, user_id, created_at DESC);
CREATE INDEX user_sessions_expiry_idx ON user_sessions (expires_at);

-- Rollups kept current by the writer in the ingest transaction. Hourly buckets (UTC hour start)
-- rather than daily ones, so that a day in any time zone with a whole-hour offset is an exact
-- sum of buckets; they are still ~1000x smaller than raw rows.
CREATE TABLE login_rollups_hourly (
  project_id   uuid NOT NULL,
  bucket       timestamptz NOT NULL,
  method       text NOT NULL,
  device_type  text NOT NULL,
  browser      text NOT NULL,
  os           text NOT NULL,
  success      boolean NOT NULL,
  count        bigint NOT NULL,
  PRIMARY KEY (project_id, bucket, method, device_type, browser, os, success)
);

CREATE TABLE activity_rollups_hourly (
  project_id   uuid NOT NULL,
  bucket       timestamptz NOT NULL,
  action       text NOT NULL,
  entity_type  text NOT NULL,
  count        bigint NOT NULL,
  PRIMARY KEY (project_id, bucket, action, entity_type)
);

CREATE TABLE event_rollups_hourly (
  project_id  uuid NOT NULL,
  bucket      timestamptz NOT NULL,
  type        text NOT NULL,
  name        text NOT NULL,
  count       bigint NOT NULL,
  PRIMARY KEY (project_id, bucket, type, name)
);

-- Distinct users per UTC day (from logins, activities and identified events): DAU/WAU/MAU and
-- unique-user counts read this set instead of scanning raw rows.
CREATE TABLE user_activity_daily (
  project_id  uuid NOT NULL,
  day         date NOT NULL,
  user_id     text NOT NULL,
  PRIMARY KEY (project_id, day, user_id)
);

-- Creates the monthly partition of `parent` holding `at` (UTC months), if missing. Serialised
-- by a transaction-scoped advisory lock so concurrent instances never race on CREATE TABLE.
CREATE FUNCTION strata_events_ensure_partition(parent text, at timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  month_start timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
  part text := format('%s_p%s', parent, to_char(month_start, 'YYYYMM'));
BEGIN
  IF parent NOT IN ('login_events', 'activity_logs', 'events') THEN
    RAISE EXCEPTION 'not a partitioned event table: %', parent;
  END IF;
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('strata_events_partition'), hashtext(part));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format(
    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
    part, parent,
    month_start AT TIME ZONE 'UTC',
    (month_start + interval '1 month') AT TIME ZONE 'UTC'
  );
  RETURN true;
END
$$;
