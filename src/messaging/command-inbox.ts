/**
 * Storing received commands (messages.md 8): every command of `payment-commands` is first written to
 * `command_inbox`, keyed by (transport, channel, transport message id), before the transport is
 * acknowledged. A key already present is a duplicate: nothing is stored, the caller acknowledges.
 * Processing the stored rows is the command processor's job.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Tx } from '../store/db.js';

export type CommandTransport = 'local' | 'http' | 'rabbitmq';

export interface StoreCommandInput {
  transport: CommandTransport;
  /** Normally `payment-commands`. */
  channel: string;
  /** Event Platform / hub `MessageId`, AMQP `messageId` (or its SHA-256 substitute). */
  transportMessageId: string;
  /** Decoded type (transferName / name / event); undefined for an undecodable message. */
  messageName?: string;
  /** Decoded tenant (tenantIdentifier / storeReference); undefined for an undecodable message. */
  tenantIdentifier?: string;
  /** The attributes as received, camelCase keys. */
  attributes: Record<string, unknown>;
  /** The payload (JSON object), or undefined when it could not be decoded. */
  payload?: unknown;
  /** `received` (default) or `dead` for undecodable messages (http transport). */
  state?: 'received' | 'dead';
  /** Reason stored with a `dead` row. */
  lastError?: string;
}

export interface StoreCommandResult {
  /** Inbox row id (the existing one for a duplicate). */
  id: string;
  duplicate: boolean;
}

/** Wakes command processors in this process after a commit that stored commands. */
export const commandInboxSignal = new EventEmitter();
commandInboxSignal.setMaxListeners(100);

export async function storeCommand(tx: Tx, input: StoreCommandInput): Promise<StoreCommandResult> {
  const id = randomUUID();
  const state = input.state ?? 'received';
  const r = await tx.query<{ id: string }>(
    `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, attributes, payload, state, last_error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (transport, channel, transport_message_id) DO NOTHING
     RETURNING id`,
    [
      id,
      input.transport,
      input.channel,
      input.transportMessageId,
      input.messageName ?? null,
      input.tenantIdentifier ?? null,
      JSON.stringify(input.attributes ?? {}),
      input.payload === undefined ? null : JSON.stringify(input.payload),
      state,
      input.lastError ?? null,
    ],
  );
  if (r.rows.length > 0) {
    if (state === 'received') tx.afterCommit(() => commandInboxSignal.emit('received'));
    return { id: r.rows[0]!.id, duplicate: false };
  }
  const existing = await tx.query<{ id: string }>(
    'SELECT id FROM command_inbox WHERE transport = $1 AND channel = $2 AND transport_message_id = $3',
    [input.transport, input.channel, input.transportMessageId],
  );
  return { id: existing.rows[0]?.id ?? id, duplicate: true };
}
