-- The message clock (messages.md 2.3) without a lock held until commit. Each tenant's clock was a row of
-- `message_clock`, updated by the statement that writes the messages: its lock was held until that transaction's
-- COMMIT had flushed, so all writes of one shop waited for each other's commits (capture commands at c=50: ~120 per
-- second, README "Benchmark"). Now one clock for all tenants (strictly increasing for all is strictly increasing for
-- each): a sequence holding the last timestamp given out, in microseconds since the epoch. A sequence is not
-- transactional, so its lock is released as soon as the value is set, not at commit.
--
-- `oacp_message_clock(n)` gives the next n timestamps (the clock, or the previous one plus 1 µs) together with the
-- outbox `seq` of each, both taken under one advisory lock held only while they are taken: a row written later in
-- `seq` order has the later timestamp too. Callers take it once they hold the lock of the aggregate the messages
-- announce (the payment, the tenant's configuration, the merchant), so within one ordering key the timestamps and
-- `seq` also follow commit order. A value given to a transaction that then rolls back is skipped, never reused.
CREATE SEQUENCE message_clock_us AS bigint MINVALUE 0;
SELECT setval('message_clock_us', GREATEST(
  (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
  COALESCE((SELECT max((extract(epoch FROM last_ts) * 1000000)::bigint) FROM message_clock), 0)));
DROP TABLE message_clock;

CREATE FUNCTION oacp_message_clock(n bigint) RETURNS TABLE (k bigint, seq bigint, ts text) LANGUAGE plpgsql AS $$
DECLARE
  last_us bigint;
BEGIN
  IF n IS NULL OR n < 1 THEN RETURN; END IF;
  PERFORM pg_advisory_lock(7270012, 2);
  BEGIN
    last_us := GREATEST((extract(epoch FROM clock_timestamp()) * 1000000)::bigint + n - 1,
                        pg_sequence_last_value('message_clock_us') + n);
    PERFORM setval('message_clock_us', last_us);
    RETURN QUERY
      SELECT g, nextval('outbox_seq_seq'),
        to_char((timestamptz 'epoch' + (last_us - n + g) * interval '1 microsecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
      FROM generate_series(1::bigint, n) AS g;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    -- a session-level lock outlives an error: release it before the error goes on
    PERFORM pg_advisory_unlock(7270012, 2);
    RAISE;
  END;
  PERFORM pg_advisory_unlock(7270012, 2);
END
$$;
