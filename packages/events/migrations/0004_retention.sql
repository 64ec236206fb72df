-- Retention: drops whole monthly partitions that end before `cutoff` (cheap, no row-by-row
-- DELETE or vacuum), and trims dedup keys older than the cutoff in bounded batches (a resend of
-- a message older than the retention window is outside the dedup guarantee by definition).
-- Rollups and daily user sets are small and stay: historical analytics read them, not raw rows.
-- Serialised across instances by a transaction-scoped advisory lock; returns what it dropped.
CREATE FUNCTION strata_events_apply_retention(cutoff timestamptz, dedup_batch integer DEFAULT 50000)
RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  dropped text[] := '{}';
  part record;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('strata_events_retention')) THEN
    RETURN dropped;
  END IF;
  FOR part IN
    SELECT c.relname AS name, p.relname AS parent,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.relname IN ('login_events', 'activity_logs', 'events')
  LOOP
    IF part.upper_bound IS NOT NULL AND part.upper_bound <= cutoff THEN
      EXECUTE format('DROP TABLE %I', part.name);
      dropped := dropped || part.name::text;
    END IF;
  END LOOP;
  DELETE FROM event_dedup
  WHERE ctid = ANY (ARRAY(SELECT ctid FROM event_dedup WHERE ts < cutoff LIMIT dedup_batch));
  RETURN dropped;
END
$$;
