/**
 * Repository of the `command_inbox` table, receiving side (messages.md 8): storing a received command keyed by
 * (transport, channel, transport message id), within the caller's transaction.
 */
import type { CommandInboxStatus } from '../domain/processing-status.js';
import { coalescerPerDb, isPool } from './coalesce.js';
import type { Queryable } from './db.js';

export type CommandTransport = 'local' | 'http' | 'rabbitmq';

/** The states a command is stored in when received: `received`, or `dead` when it could not be decoded. */
export type ReceivedCommandState = Extract<CommandInboxStatus, 'received' | 'dead'>;

export interface CommandInboxInsert {
  id: string;
  transport: CommandTransport;
  channel: string;
  transportMessageId: string;
  messageName: string | null;
  tenantIdentifier: string | null;
  attributes: Record<string, unknown>;
  /** Undefined when the payload could not be decoded (stored as NULL). */
  payload: unknown;
  state: ReceivedCommandState;
  lastError: string | null;
}

const INSERT_ONE_SQL = `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, attributes, payload, state, last_error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (transport, channel, transport_message_id) DO NOTHING
     RETURNING id`;

/** Several rows in one statement, each skipped when its key is present (a key twice in the batch: the first is stored). */
const INSERT_MANY_SQL = `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, attributes, payload, state, last_error)
     SELECT e->>'id', e->>'transport', e->>'channel', e->>'transportMessageId', e->>'messageName', e->>'tenantIdentifier', e->'attributes',
       e->'payload', e->>'state', e->>'lastError'
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, ord) ORDER BY ord
     ON CONFLICT (transport, channel, transport_message_id) DO NOTHING
     RETURNING id`;

async function insertOne(q: Queryable, c: CommandInboxInsert): Promise<string | undefined> {
  const r = await q.query<{ id: string }>(INSERT_ONE_SQL, [
    c.id,
    c.transport,
    c.channel,
    c.transportMessageId,
    c.messageName,
    c.tenantIdentifier,
    JSON.stringify(c.attributes),
    c.payload === undefined ? null : JSON.stringify(c.payload),
    c.state,
    c.lastError,
  ]);
  return r.rows[0]?.id;
}

/**
 * Commands stored on the database itself (autocommit) that arrive while one is being stored share the next statement
 * (`coalesce.ts`; a lone one runs at once and alone): under load a command's publish is a fraction of a statement.
 * Rows of one statement share its `created_at`; they arrived at the same time (the id orders them, as for the rows a
 * transport stores in one transaction).
 */
const commandCoalescer = coalescerPerDb<CommandInboxInsert, string | undefined>((db) => ({
  one: (_key, c) => insertOne(db, c),
  many: async (_key, cs) => {
    // the rows as they are: their keys are the statement's names; an absent payload is left out by JSON, so NULL
    const r = await db.query<{ id: string }>(INSERT_MANY_SQL, [JSON.stringify(cs)]);
    const stored = new Set(r.rows.map((row) => row.id));
    return cs.map((c) => (stored.has(c.id) ? c.id : undefined));
  },
}));

/**
 * Inserts the row unless its key is already present. Returns the new row's id, or undefined for a duplicate. On the
 * database itself (not in a transaction), rows arriving together are grouped.
 */
export async function insertCommand(q: Queryable, c: CommandInboxInsert): Promise<string | undefined> {
  return isPool(q) ? commandCoalescer(q).submit('', c) : insertOne(q, c);
}

/** The id of the row stored under a transport key, if any. */
export async function findCommandId(tx: Queryable, transport: CommandTransport, channel: string, transportMessageId: string): Promise<string | undefined> {
  const r = await tx.query<{ id: string }>('SELECT id FROM command_inbox WHERE transport = $1 AND channel = $2 AND transport_message_id = $3', [
    transport,
    channel,
    transportMessageId,
  ]);
  return r.rows[0]?.id;
}
