/**
 * Repository of the `command_inbox` table, receiving side (messages.md 8): storing a received command keyed by
 * (transport, channel, transport message id), within the caller's transaction.
 */
import type { CommandInboxStatus } from '../domain/processing-status.js';
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

/** Inserts the row unless its key is already present. Returns the new row's id, or undefined for a duplicate. */
export async function insertCommand(tx: Queryable, c: CommandInboxInsert): Promise<string | undefined> {
  const r = await tx.query<{ id: string }>(
    `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, attributes, payload, state, last_error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (transport, channel, transport_message_id) DO NOTHING
     RETURNING id`,
    [
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
    ],
  );
  return r.rows[0]?.id;
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
