-- Exact unique users over any range without reading raw rows: each project's users get a dense
-- integer id, and the writer keeps, per UTC hour and per UTC day, the set of users seen as a
-- bitmap (bit `uid` set). A 90-day count is then the popcount of the OR of 90 daily bitmaps
-- (plus hourly ones and raw rows for the partial pieces of the range) instead of a
-- COUNT(DISTINCT) over millions of rows. Bitmaps are split in chunks of 8192 users (1 KiB, kept
-- inline in the heap: no TOAST, no compression), so a write rewrites 1 KiB rather than the
-- project's whole user space, and bit_or always sees equal lengths.
-- Kinds: 'l' = users with a login, 'a' = users with any activity (login, activity or
-- identified event: DAU/WAU/MAU). Grains: 'h' = UTC hour, 'd' = UTC day.
-- Replaces user_activity_daily, whose per-day rows made a 90-day MAU series read millions of rows.

CREATE TABLE analytics_user_ids (
  project_id  uuid NOT NULL,
  user_id     text NOT NULL,
  uid         integer NOT NULL,
  PRIMARY KEY (project_id, user_id)
);

-- Ids handed out per project so far. Ids lost to a rolled-back flush or to a concurrent
-- allocation of the same user are gaps: a zero bit, never a wrong count.
CREATE TABLE analytics_user_id_counters (
  project_id  uuid PRIMARY KEY,
  allocated   integer NOT NULL
);

CREATE TABLE user_bitmaps (
  project_id  uuid NOT NULL,
  kind        "char" NOT NULL,
  grain       "char" NOT NULL,
  bucket      timestamptz NOT NULL,
  chunk       integer NOT NULL,
  bits        bit varying(8192) NOT NULL,
  PRIMARY KEY (project_id, kind, grain, bucket, chunk)
);

-- An 8192-bit chunk with the given bit positions set.
CREATE FUNCTION strata_bitmap(positions integer[])
RETURNS bit varying
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  b bit varying := repeat('0', 8192)::bit varying;
  i integer;
BEGIN
  FOREACH i IN ARRAY positions LOOP
    b := set_bit(b, i, 1);
  END LOOP;
  RETURN b;
END
$$;

-- Gives every user of `project` seen in login_events/activity_logs/events during [lo, hi) an id,
-- then ORs the users of each UTC hour and day of that span (widened to whole UTC days) into the
-- bitmaps. Idempotent (bits are only ever set), so it is safe to rerun and to run beside the
-- writer. Used by bulk loads that bypass the writer (`strata seed`) and by this migration.
CREATE FUNCTION strata_events_rebuild_user_bitmaps(project uuid, lo timestamptz, hi timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  d0 timestamptz := date_trunc('day', lo, 'UTC');
  d1 timestamptz := date_trunc('day', hi - interval '1 microsecond', 'UTC') + interval '1 day';
  fresh integer;
BEGIN
  CREATE TEMP TABLE strata_seen ON COMMIT DROP AS
    SELECT date_trunc('hour', ts) AS h, user_id, login FROM (
      SELECT ts, user_id, true AS login FROM login_events
        WHERE project_id = project AND ts >= d0 AND ts < d1
      UNION ALL SELECT ts, user_id, false FROM activity_logs
        WHERE project_id = project AND ts >= d0 AND ts < d1
      UNION ALL SELECT ts, user_id, false FROM events
        WHERE project_id = project AND user_id IS NOT NULL AND ts >= d0 AND ts < d1) s
    GROUP BY 1, 2, 3;

  CREATE TEMP TABLE strata_new_users ON COMMIT DROP AS
    SELECT user_id, (row_number() OVER (ORDER BY user_id))::integer - 1 AS rn
    FROM (SELECT DISTINCT user_id FROM strata_seen) s
    WHERE NOT EXISTS (SELECT 1 FROM analytics_user_ids i
                      WHERE i.project_id = project AND i.user_id = s.user_id);
  SELECT count(*) INTO fresh FROM strata_new_users;
  IF fresh > 0 THEN
    WITH c AS (
      INSERT INTO analytics_user_id_counters AS c (project_id, allocated) VALUES (project, fresh)
      ON CONFLICT (project_id) DO UPDATE SET allocated = c.allocated + excluded.allocated
      RETURNING allocated
    )
    INSERT INTO analytics_user_ids (project_id, user_id, uid)
    SELECT project, n.user_id, c.allocated - fresh + n.rn FROM strata_new_users n, c
    ON CONFLICT DO NOTHING;
  END IF;

  INSERT INTO user_bitmaps AS b (project_id, kind, grain, bucket, chunk, bits)
  SELECT project, k.kind, g.grain, g.bucket, i.uid >> 13, strata_bitmap(array_agg(DISTINCT i.uid & 8191))
  FROM strata_seen s
  JOIN analytics_user_ids i ON i.project_id = project AND i.user_id = s.user_id
  CROSS JOIN LATERAL (VALUES ('a'::"char"), (CASE WHEN s.login THEN 'l'::"char" END)) k(kind)
  CROSS JOIN LATERAL (VALUES ('h'::"char", s.h), ('d'::"char", date_trunc('day', s.h, 'UTC'))) g(grain, bucket)
  WHERE k.kind IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (project_id, kind, grain, bucket, chunk) DO UPDATE SET bits = b.bits | excluded.bits;

  DROP TABLE strata_seen;
  DROP TABLE strata_new_users;
END
$$;

-- Existing data: every project's whole history.
DO $$
DECLARE
  p record;
BEGIN
  FOR p IN
    SELECT project_id, min(lo) AS lo, max(hi) AS hi FROM (
      SELECT project_id, min(ts) AS lo, max(ts) + interval '1 microsecond' AS hi FROM login_events GROUP BY 1
      UNION ALL SELECT project_id, min(ts), max(ts) + interval '1 microsecond' FROM activity_logs GROUP BY 1
      UNION ALL SELECT project_id, min(ts), max(ts) + interval '1 microsecond' FROM events
        WHERE user_id IS NOT NULL GROUP BY 1) s
    GROUP BY 1
  LOOP
    PERFORM strata_events_rebuild_user_bitmaps(p.project_id, p.lo, p.hi);
  END LOOP;
END
$$;

DROP TABLE user_activity_daily;
