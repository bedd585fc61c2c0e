-- Operator console (issue 11): audit log of operator actions, outbox discard marks, indexes for the payments search.

-- Every operator action (replay, re-queue, discard, retry): who, when, what, why. Shown on the affected payment's timeline.
CREATE TABLE console_audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,                         -- "local:<user>", "oidc:<sub>", "loopback", "cli:<os user>"
  action text NOT NULL CHECK (action IN ('webhook.replay', 'webhook.discard', 'outbox.requeue', 'outbox.discard', 'command.retry')),
  target_kind text NOT NULL CHECK (target_kind IN ('webhook', 'outbox', 'command')),
  target_id text NOT NULL,
  tenant_identifier text,
  payment_id text,                             -- the payment the target concerns, when known
  from_state text NOT NULL,
  reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000)
);
CREATE INDEX console_audit_payment_idx ON console_audit_log (payment_id, at) WHERE payment_id IS NOT NULL;
CREATE INDEX console_audit_target_idx ON console_audit_log (target_kind, target_id);

-- An operator's discard of a dead outbox row (messages.md 7): the row stays stored and `dead`, but no longer blocks its
-- ordering key (the relay skips discarded rows when it checks for older undelivered rows).
ALTER TABLE outbox ADD COLUMN discarded_at timestamptz;

-- Payments search, newest first with keyset pagination on (created_at, id).
CREATE INDEX payments_created_idx ON payments (created_at DESC, id DESC);
CREATE INDEX payments_tenant_created_idx ON payments (tenant_identifier, created_at DESC, id DESC);
CREATE INDEX payments_status_created_idx ON payments (status, created_at DESC, id DESC);
CREATE INDEX payments_order_idx ON payments (order_reference) WHERE order_reference IS NOT NULL;
CREATE INDEX payment_aliases_tx_idx ON payment_aliases (transaction_id);
CREATE INDEX payment_operations_psp_ref_idx ON payment_operations (psp_reference) WHERE psp_reference IS NOT NULL;
CREATE INDEX refunds_psp_refund_idx ON refunds (psp_refund_id) WHERE psp_refund_id IS NOT NULL;
-- Commands of one payment (its order reference) on the payment page.
CREATE INDEX command_inbox_order_idx ON command_inbox (tenant_identifier, (payload->>'orderReference'));
