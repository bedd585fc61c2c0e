-- Core tables: tenants, outbox, per-tenant message clock, local Event Platform hub, command inbox.

CREATE TABLE tenants (
  tenant_identifier text PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('NEW', 'CONNECTED', 'DISCONNECTED')),
  is_active boolean NOT NULL,
  revision integer NOT NULL,
  -- non-secret configuration values
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- secret values: { "<field>": "<keyId>:<iv b64>:<tag b64>:<ciphertext b64>" }
  secrets jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- previous secret values still valid for a while (webhook secret rotation): { "<field>": {"value": "<ciphertext>", "until": "<iso>"} }
  previous_secrets jsonb NOT NULL DEFAULT '{}'::jsonb,
  locale text NOT NULL DEFAULT 'en_US',
  -- payment methods last announced: [{ "name": ..., "payload": {...} }]
  announced_methods jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE message_clock (
  tenant_identifier text PRIMARY KEY,
  last_ts timestamptz NOT NULL
);

CREATE TABLE outbox (
  id text PRIMARY KEY,                      -- deterministic message id (UUIDv5)
  seq bigserial UNIQUE,
  tenant_identifier text NOT NULL,
  channel text NOT NULL,
  message_name text NOT NULL,
  ordering_key text NOT NULL,
  attributes jsonb NOT NULL,
  payload jsonb NOT NULL,
  message_timestamp text NOT NULL,          -- messages.md 2.3 form, never changes
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz,
  first_failed_at timestamptz,
  last_error text,
  receipt text,
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX outbox_key_idx ON outbox (ordering_key, seq) WHERE state <> 'delivered';
CREATE INDEX outbox_tenant_idx ON outbox (tenant_identifier, seq);

-- The embedded Event Platform (MESSAGE_TRANSPORT=local), messages.md 9.2.
CREATE TABLE hub_messages (
  seq bigserial PRIMARY KEY,
  message_id text NOT NULL,
  channel text NOT NULL,
  consumer_id text NOT NULL,
  body text NOT NULL,
  attributes jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  leased_until timestamptz,
  acked_at timestamptz,
  UNIQUE (channel, message_id)
);
CREATE INDEX hub_messages_consumer_idx ON hub_messages (channel, consumer_id, seq) WHERE acked_at IS NULL;

-- Incoming commands (payment-commands), messages.md 8.
CREATE TABLE command_inbox (
  id text PRIMARY KEY,
  transport text NOT NULL,
  channel text NOT NULL,
  transport_message_id text NOT NULL,
  message_name text,
  tenant_identifier text,
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
  payload jsonb,
  state text NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'processed', 'ignored', 'rejected', 'retrying', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  UNIQUE (transport, channel, transport_message_id)
);
CREATE INDEX command_inbox_due_idx ON command_inbox (next_attempt_at) WHERE state IN ('received', 'retrying');
