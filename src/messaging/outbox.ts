/**
 * Writing outgoing messages (messages.md 2 and 7). Every message is inserted into `outbox` inside the
 * caller's transaction (through the outbox repository, `src/store/outbox.ts`), with a deterministic id,
 * a per-tenant strictly increasing timestamp and the attributes of messages.md 2.2. The relay (relay.ts)
 * delivers it later. No code path publishes directly.
 */
import { EventEmitter } from 'node:events';
import { derivedUuid, uuidNamespace } from '../domain/derived-id.js';
import type { Tx } from '../store/db.js';
import { insertOutboxMessages, requeueOutboxMessage, type OutboxInsert } from '../store/outbox.js';

export const CHANNELS = ['payment-method-commands', 'payment-events', 'app-events', 'merchant-app-events', 'payment-commands'] as const;
export type Channel = (typeof CHANNELS)[number];

/** RFC 4122 URL namespace (messages.md 2.4). */
const NAMESPACE = uuidNamespace('6ba7b811-9dad-11d1-80b4-00c04fd430c8');

export interface OutgoingMessage {
  tenantIdentifier: string;
  channel: Channel;
  /** Message name, e.g. `PaymentAuthorized`. */
  name: string;
  /** Business event key of messages.md 2.4 (e.g. `payment/<id>/created`). */
  eventKey: string;
  /** Aggregate the message concerns (`payment/<paymentId>`, `config`, `merchant/<ref>`); the tenant is added. */
  orderingKey: string;
  payload: Record<string, unknown>;
  /** What caused the message: request id, command message id or webhook inbox id. */
  correlationId?: string;
}

export interface MessageAttributes {
  transferName: string;
  name: string;
  event: string;
  tenantIdentifier: string;
  storeReference: string;
  actorId: string;
  publisher: string;
  timestamp: string;
  correlationId: string;
  transactionId: string;
  messageId: string;
}

export type { OutboxRow } from '../store/outbox.js';

export function messageId(appIdentifier: string, tenantIdentifier: string, name: string, eventKey: string): string {
  return derivedUuid(`urn:open-acp-pay:${appIdentifier}:${tenantIdentifier}:${name}:${eventKey}`, NAMESPACE);
}

/** Removes keys whose value is null or undefined, recursively (messages.md 2.1). */
export function stripNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => stripNulls(v)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === null || v === undefined) continue;
      out[k] = stripNulls(v);
    }
    return out as T;
  }
  return value;
}

/** Wakes relays in this process right after a commit that wrote outbox rows. */
export const outboxSignal = new EventEmitter();
outboxSignal.setMaxListeners(100);

/**
 * Inserts messages into the outbox within `tx`, in the given order. Returns their ids.
 * A message whose id already exists (the same business event) is not inserted again.
 */
export async function enqueue(tx: Tx, appIdentifier: string, messages: OutgoingMessage[]): Promise<string[]> {
  const rows = outboxRowsOf(appIdentifier, messages);
  // one statement per tenant (each statement names its tenant), in the given order
  const tenants = [...new Set(rows.map((r) => r.tenantIdentifier))];
  for (const tenant of tenants) await insertOutboxMessages(tx, tenant, rows.filter((r) => r.tenantIdentifier === tenant));
  if (messages.length > 0) tx.afterCommit(() => outboxSignal.emit('written'));
  return rows.map((r) => r.id);
}

/** The outbox rows of messages, for a store function that writes them in the same statement as the change they announce. */
export function outboxRowsOf(appIdentifier: string, messages: OutgoingMessage[]): OutboxInsert[] {
  return messages.map((m) => outboxInsertOf(appIdentifier, m));
}

/** Wakes the relays after outbox rows were written by a statement outside `enqueue` (call after it succeeded). */
export function outboxWritten(): void {
  outboxSignal.emit('written');
}

/** The outbox row of a message: deterministic id and every attribute but the timestamp (set by the statement). */
function outboxInsertOf(appIdentifier: string, m: OutgoingMessage): OutboxInsert {
  const id = messageId(appIdentifier, m.tenantIdentifier, m.name, m.eventKey);
  const attributes: Omit<MessageAttributes, 'timestamp'> = {
    transferName: m.name,
    name: m.name,
    event: m.name,
    tenantIdentifier: m.tenantIdentifier,
    storeReference: m.tenantIdentifier,
    actorId: appIdentifier,
    publisher: appIdentifier,
    correlationId: m.correlationId ?? id,
    transactionId: id,
    messageId: id,
  };
  return {
    id,
    tenantIdentifier: m.tenantIdentifier,
    channel: m.channel,
    messageName: m.name,
    orderingKey: `${m.tenantIdentifier}/${m.orderingKey}`,
    attributes,
    payload: stripNulls(m.payload),
  };
}

/** Re-publication (messages.md 4.3): the stored row goes back to pending with its id, payload and timestamp. */
export async function republish(tx: Tx, id: string): Promise<boolean> {
  const requeued = await requeueOutboxMessage(tx, id);
  if (requeued) tx.afterCommit(() => outboxSignal.emit('written'));
  return requeued;
}
