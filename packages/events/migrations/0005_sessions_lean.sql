-- No API reads sessions by user (sessions are fetched by id; active users come from
-- user_activity_daily), and every successful login inserts a session: an index nobody reads is
-- pure cost on the hottest write path. Add it back with the first query that needs it.
DROP INDEX user_sessions_user_idx;
