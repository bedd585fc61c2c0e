-- Payments and everything hanging off them (states.md 1-5), merchants (states.md 6), webhook inbox (flows.md 12).

CREATE TABLE payments (
  id text PRIMARY KEY,                         -- our internal UUID (stable)
  tenant_identifier text NOT NULL,
  transaction_id text NOT NULL,                -- current PSP payment id
  order_reference text,                        -- null while pre-order
  status text NOT NULL,
  version integer NOT NULL DEFAULT 1,          -- +1 on every write (PaymentUpdated event key)
  amount bigint NOT NULL,                      -- requested amount, minor units
  currency text NOT NULL,                      -- ISO 4217 upper-case
  authorized_amount bigint NOT NULL DEFAULT 0,
  captured_amount bigint NOT NULL DEFAULT 0,
  pending_capture_amount bigint NOT NULL DEFAULT 0,
  released_amount bigint NOT NULL DEFAULT 0,
  refunded_amount bigint NOT NULL DEFAULT 0,
  pending_refund_amount bigint NOT NULL DEFAULT 0,
  payment_method text NOT NULL,                -- normalised method name, e.g. credit-card
  connector text NOT NULL,
  mode text NOT NULL DEFAULT 'test' CHECK (mode IN ('test', 'live')),
  capture_mode text NOT NULL DEFAULT 'manual',
  order_data jsonb NOT NULL,                   -- every orderData field as sent
  redirect_success_url text,
  redirect_cancel_url text,
  checkout_summary_page_url text,
  locale_name text,
  pre_order_data jsonb,                        -- connector's preOrderPaymentData (no secrets)
  psp_details jsonb NOT NULL DEFAULT '{}'::jsonb,  -- public PSP details (card brand, last4, ...)
  initialize_fingerprint text,                 -- hash of the initialize request's amount+currency for idempotency
  linked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (captured_amount >= 0 AND pending_capture_amount >= 0 AND refunded_amount >= 0 AND pending_refund_amount >= 0),
  CHECK (refunded_amount + pending_refund_amount <= captured_amount)
);
CREATE UNIQUE INDEX payments_tenant_tx_idx ON payments (tenant_identifier, transaction_id);
CREATE UNIQUE INDEX payments_tenant_order_idx ON payments (tenant_identifier, order_reference) WHERE order_reference IS NOT NULL;
CREATE INDEX payments_tx_idx ON payments (transaction_id);

-- Old transaction ids that still resolve to a payment (pre-order amount change with a new PSP id).
CREATE TABLE payment_aliases (
  tenant_identifier text NOT NULL,
  transaction_id text NOT NULL,
  payment_id text NOT NULL REFERENCES payments (id),
  PRIMARY KEY (tenant_identifier, transaction_id)
);

CREATE TABLE payment_status_history (
  id bigserial PRIMARY KEY,
  payment_id text NOT NULL REFERENCES payments (id),
  seq integer NOT NULL,                        -- 1, 2, ... per payment (status-history sequence of messages.md 2.4)
  status text NOT NULL,
  trigger text NOT NULL CHECK (trigger IN ('sync', 'command', 'webhook', 'redirect', 'reconciliation')),
  trigger_ref text,                            -- request id, command message id or webhook inbox id
  details jsonb,                               -- e.g. a retryable decline attempt
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (payment_id, seq)
);

-- PSP operations started before the PSP call (flows.md 0 rule 3). kind: capture | cancel.
CREATE TABLE payment_operations (
  id text PRIMARY KEY,                         -- also the PSP idempotency key
  payment_id text NOT NULL REFERENCES payments (id),
  tenant_identifier text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('capture', 'cancel')),
  item_key text NOT NULL,                      -- sorted item ids joined by ','
  order_item_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  amount bigint NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  psp_reference text,
  failure_reason text,
  command_id text,                             -- command inbox id that caused it
  result_message_ids jsonb NOT NULL DEFAULT '[]'::jsonb,  -- outbox ids of its outcome messages (re-publication)
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_operations_payment_idx ON payment_operations (payment_id, kind, item_key);
CREATE INDEX payment_operations_pending_idx ON payment_operations (next_attempt_at) WHERE status = 'pending';

CREATE TABLE refunds (
  id text PRIMARY KEY,                         -- also the PSP idempotency key
  payment_id text NOT NULL REFERENCES payments (id),
  tenant_identifier text NOT NULL,
  item_key text NOT NULL,
  order_item_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled')),
  status_seq integer NOT NULL DEFAULT 1,
  psp_refund_id text,
  failure_reason text,
  command_id text,
  result_message_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id);
CREATE UNIQUE INDEX refunds_psp_idx ON refunds (tenant_identifier, psp_refund_id) WHERE psp_refund_id IS NOT NULL;

CREATE TABLE merchants (
  tenant_identifier text NOT NULL,
  merchant_reference text NOT NULL,
  name text,
  status text NOT NULL CHECK (status IN ('pending', 'completed', 'enabled', 'restricted soon', 'restricted', 'rejected')),
  status_seq integer NOT NULL DEFAULT 1,
  psp_account_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_identifier, merchant_reference)
);

CREATE TABLE transfers (
  id text PRIMARY KEY,                         -- also the PSP idempotency key
  tenant_identifier text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('payout', 'reversal')),
  order_reference text NOT NULL,
  merchant_reference text NOT NULL,
  item_key text NOT NULL,                      -- sorted item references
  items jsonb NOT NULL,
  amount bigint NOT NULL,                      -- absolute value
  currency text NOT NULL,
  original_transfer_id text,                   -- reversal: PSP id of the payout it reverses
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  psp_transfer_id text,
  failure_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfers_order_idx ON transfers (tenant_identifier, order_reference);

-- PSP object id -> tenant (flows.md 12 step 3): every payment, refund, transfer and account the app created.
CREATE TABLE psp_objects (
  connector text NOT NULL,
  psp_object_id text NOT NULL,
  tenant_identifier text NOT NULL,
  kind text NOT NULL,
  PRIMARY KEY (connector, psp_object_id)
);

CREATE TABLE webhook_inbox (
  id text PRIMARY KEY,                         -- our UUID (correlationId of resulting messages)
  tenant_identifier text NOT NULL,
  connector text NOT NULL,
  event_id text NOT NULL,
  event_type text NOT NULL,
  mode text NOT NULL,
  psp_object_id text,
  payload jsonb NOT NULL,
  state text NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'processed', 'ignored', 'waiting_for_payment', 'waiting_for_order', 'retrying', 'discarded', 'expired', 'dead')),
  reason text,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  received_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  UNIQUE (tenant_identifier, connector, event_id)
);
CREATE INDEX webhook_inbox_due_idx ON webhook_inbox (next_attempt_at) WHERE state IN ('received', 'waiting_for_payment', 'retrying');
CREATE INDEX webhook_inbox_object_idx ON webhook_inbox (tenant_identifier, psp_object_id, received_at);
