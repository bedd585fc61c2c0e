/**
 * Processing record machines (states.md 5): webhook inbox rows, command inbox rows, outbox rows. Pure data + one
 * gate per machine. Same status is a no-op (states.md 8 rule 3); any unlisted pair is illegal.
 */

export const WEBHOOK_INBOX_STATUSES = [
  'received',
  'processed',
  'ignored',
  'waiting_for_payment',
  'waiting_for_order',
  'retrying',
  'discarded',
  'expired',
  'dead',
] as const;
export type WebhookInboxStatus = (typeof WEBHOOK_INBOX_STATUSES)[number];

export const COMMAND_INBOX_STATUSES = ['received', 'processed', 'ignored', 'rejected', 'retrying', 'dead'] as const;
export type CommandInboxStatus = (typeof COMMAND_INBOX_STATUSES)[number];

export const OUTBOX_STATUSES = ['pending', 'delivered', 'dead'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export const WEBHOOK_INBOX_TRANSITIONS: Readonly<Record<WebhookInboxStatus, readonly WebhookInboxStatus[]>> = Object.freeze({
  received: ['processed', 'ignored', 'waiting_for_payment', 'waiting_for_order', 'retrying'],
  waiting_for_payment: ['processed', 'ignored', 'waiting_for_order', 'retrying', 'dead'],
  waiting_for_order: ['processed', 'ignored', 'retrying', 'discarded', 'expired'],
  retrying: ['processed', 'ignored', 'dead'],
  dead: ['received'],
  expired: ['received'],
  processed: [],
  ignored: [],
  discarded: [],
});

export const COMMAND_INBOX_TRANSITIONS: Readonly<Record<CommandInboxStatus, readonly CommandInboxStatus[]>> = Object.freeze({
  received: ['processed', 'ignored', 'rejected', 'retrying'],
  retrying: ['processed', 'ignored', 'rejected', 'dead'],
  processed: [],
  ignored: [],
  rejected: [],
  dead: [],
});

export const OUTBOX_TRANSITIONS: Readonly<Record<OutboxStatus, readonly OutboxStatus[]>> = Object.freeze({
  pending: ['delivered', 'dead'],
  delivered: ['pending'],
  dead: ['pending'],
});

export type RecordTransitionResult =
  | { ok: true; changed: boolean }
  | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string; to: string; message: string } };

function gate(machine: string, table: Readonly<Record<string, readonly string[]>>, from: string, to: string): RecordTransitionResult {
  const known = Object.prototype.hasOwnProperty.call(table, from) && Object.prototype.hasOwnProperty.call(table, to);
  if (known) {
    if (table[from]!.includes(to)) return { ok: true, changed: true };
    if (from === to) return { ok: true, changed: false };
  }
  return { ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to, message: `${machine} status transition from "${from}" to "${to}" is not allowed.` } };
}

export const webhookInboxTransition = (from: WebhookInboxStatus | string, to: WebhookInboxStatus | string): RecordTransitionResult =>
  gate('Webhook', WEBHOOK_INBOX_TRANSITIONS, from, to);

export const commandInboxTransition = (from: CommandInboxStatus | string, to: CommandInboxStatus | string): RecordTransitionResult =>
  gate('Command', COMMAND_INBOX_TRANSITIONS, from, to);

export const outboxTransition = (from: OutboxStatus | string, to: OutboxStatus | string): RecordTransitionResult =>
  gate('Outbox', OUTBOX_TRANSITIONS, from, to);
