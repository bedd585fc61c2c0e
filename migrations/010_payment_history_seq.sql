-- The last status-history sequence number of each payment, kept on the payment row by every write of a history row
-- (src/store/payments.ts). A state change reads it with the payment's lock and so knows the next sequence number and
-- the history before it writes: the payment, its history row and the messages announcing them go in one statement.
ALTER TABLE payments ADD COLUMN history_seq integer NOT NULL DEFAULT 0;

UPDATE payments p SET history_seq = h.last_seq
  FROM (SELECT payment_id, max(seq) AS last_seq FROM payment_status_history GROUP BY payment_id) h
  WHERE h.payment_id = p.id;
