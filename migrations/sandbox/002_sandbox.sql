-- The sandbox PSP's own state (sandbox-psp.md). App code never reads these tables.

CREATE TABLE sandbox_webhook_endpoints (
  account_id text PRIMARY KEY,               -- one endpoint per account; registering again replaces it
  url text NOT NULL,
  secret text NOT NULL,
  livemode boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox_payments (
  id text PRIMARY KEY,                        -- sbx_pay_...
  account_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('requires_payment_method', 'requires_action', 'authorized', 'captured', 'failed', 'canceled')),
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  capture_method text NOT NULL CHECK (capture_method IN ('manual', 'automatic')),
  reference text,
  return_url text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  client_secret text NOT NULL,
  amount_capturable bigint NOT NULL DEFAULT 0,
  amount_captured bigint NOT NULL DEFAULT 0,
  amount_refunded bigint NOT NULL DEFAULT 0,  -- succeeded + pending refunds
  decline_count integer NOT NULL DEFAULT 0,
  last_decline jsonb,                         -- {code, message}
  failure_code text,
  capture_error jsonb,                        -- {code, message} of the last failed capture
  card jsonb,                                 -- {brand, last4, expMonth, expYear}
  card_behavior text,                         -- normal | capture_fails | refund_fails
  payer jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (amount_capturable >= 0 AND amount_captured >= 0 AND amount_refunded >= 0 AND amount_refunded <= amount_captured)
);
CREATE INDEX sandbox_payments_account_idx ON sandbox_payments (account_id);

CREATE TABLE sandbox_refunds (
  id text PRIMARY KEY,                        -- sbx_re_...
  account_id text NOT NULL,
  payment_id text NOT NULL REFERENCES sandbox_payments (id),
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  failure_reason text,
  settle_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_refunds_due_idx ON sandbox_refunds (settle_at) WHERE status = 'pending';

CREATE TABLE sandbox_accounts (
  id text PRIMARY KEY,                        -- sbx_acct_... (connected merchant account)
  platform_account_id text NOT NULL,
  reference text,
  name text,
  status text NOT NULL CHECK (status IN ('pending', 'active', 'rejected')),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox_transfers (
  id text PRIMARY KEY,                        -- sbx_tr_...
  account_id text NOT NULL,
  destination text NOT NULL REFERENCES sandbox_accounts (id),
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  transfer_group text,
  amount_reversed bigint NOT NULL DEFAULT 0,
  reversals jsonb NOT NULL DEFAULT '[]'::jsonb, -- [{id, amount, created}]
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (amount_reversed >= 0 AND amount_reversed <= amount)
);

CREATE TABLE sandbox_idempotency (
  account_id text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status integer,
  response jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, key)
);

-- Outbox of webhook events: survives restarts, retried with backoff for 24 h.
CREATE TABLE sandbox_events (
  id text PRIMARY KEY,                        -- evt_...
  seq bigserial UNIQUE,
  account_id text NOT NULL,
  type text NOT NULL,
  body text NOT NULL,                         -- the exact JSON sent (signed per attempt)
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead', 'skipped')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  lease_until timestamptz,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz
);
CREATE INDEX sandbox_events_due_idx ON sandbox_events (next_attempt_at, seq) WHERE state = 'pending';
