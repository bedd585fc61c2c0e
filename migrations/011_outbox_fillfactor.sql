-- Room in each outbox page for the relay's claim (it sets only lease_until, which no index holds) to be a HOT
-- update: the new row version stays on its page and none of the table's indexes gets an entry for it.
ALTER TABLE outbox SET (fillfactor = 50);
