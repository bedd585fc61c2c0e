/**
 * Storing received commands (messages.md 8): every command of `payment-commands` is first written to
 * `command_inbox`, keyed by (transport, channel, transport message id), before the transport is
 * acknowledged. A key already present is a duplicate: nothing is stored, the caller acknowledges.
 * Processing the stored rows is the command processor's job.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { findCommandId, insertCommand, type CommandTransport, type ReceivedCommandState } from '../store/command-inbox.js';
import type { Queryable, Tx } from '../store/db.js';

export type { CommandTransport } from '../store/command-inbox.js';

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
  state?: ReceivedCommandState;
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

/**
 * Stores one command. Inside a transaction (`tx` has `afterCommit`) the processors are woken after its commit; on the
 * database itself (one command, its own statement: no transaction to open) as soon as the row is stored.
 */
export async function storeCommand(tx: Tx | Queryable, input: StoreCommandInput): Promise<StoreCommandResult> {
  const id = randomUUID();
  const state = input.state ?? 'received';
  const inserted = await insertCommand(tx, {
    id,
    transport: input.transport,
    channel: input.channel,
    transportMessageId: input.transportMessageId,
    messageName: input.messageName ?? null,
    tenantIdentifier: input.tenantIdentifier ?? null,
    attributes: input.attributes ?? {},
    payload: input.payload,
    state,
    lastError: input.lastError ?? null,
  });
  if (inserted !== undefined) {
    if (state === 'received') {
      if ('afterCommit' in tx) tx.afterCommit(() => commandInboxSignal.emit('received'));
      else commandInboxSignal.emit('received');
    }
    return { id: inserted, duplicate: false };
  }
  const existing = await findCommandId(tx, input.transport, input.channel, input.transportMessageId);
  return { id: existing ?? id, duplicate: true };
}
