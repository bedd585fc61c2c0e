import { describe, expect, it } from 'vitest';
import {
  COMMAND_INBOX_STATUSES,
  OUTBOX_STATUSES,
  WEBHOOK_INBOX_STATUSES,
  commandInboxTransition,
  outboxTransition,
  webhookInboxTransition,
} from '../../src/domain/processing-status.js';

// states.md 5, written independently of the implementation.
const WEBHOOK = new Set([
  'received>processed', 'received>ignored', 'received>waiting_for_payment', 'received>waiting_for_order', 'received>retrying',
  'waiting_for_payment>processed', 'waiting_for_payment>ignored', 'waiting_for_payment>waiting_for_order', 'waiting_for_payment>retrying', 'waiting_for_payment>dead',
  'waiting_for_order>processed', 'waiting_for_order>ignored', 'waiting_for_order>retrying', 'waiting_for_order>discarded', 'waiting_for_order>expired',
  'retrying>processed', 'retrying>ignored', 'retrying>dead',
  'dead>received', 'expired>received',
]);
const COMMAND = new Set([
  'received>processed', 'received>ignored', 'received>rejected', 'received>retrying',
  'retrying>processed', 'retrying>ignored', 'retrying>rejected', 'retrying>dead',
]);
const OUTBOX = new Set(['pending>delivered', 'pending>dead', 'delivered>pending', 'dead>pending']);

const machines = [
  ['Webhook', WEBHOOK_INBOX_STATUSES, WEBHOOK, webhookInboxTransition],
  ['Command', COMMAND_INBOX_STATUSES, COMMAND, commandInboxTransition],
  ['Outbox', OUTBOX_STATUSES, OUTBOX, outboxTransition],
] as const;

for (const [name, statuses, spec, fn] of machines) {
  describe(`${name} record machine (states.md 5)`, () => {
    const pairs: Array<[string, string]> = [];
    for (const from of statuses) for (const to of statuses) pairs.push([from, to]);
    it.each(pairs)('%s → %s', (from, to) => {
      const res = fn(from, to);
      if (spec.has(`${from}>${to}`)) expect(res).toEqual({ ok: true, changed: true });
      else if (from === to) expect(res).toEqual({ ok: true, changed: false });
      else
        expect(res).toEqual({
          ok: false,
          error: { code: 'ILLEGAL_TRANSITION', from, to, message: `${name} status transition from "${from}" to "${to}" is not allowed.` },
        });
    });
    it('rejects unknown statuses', () => {
      expect(fn('bogus', 'bogus').ok).toBe(false);
      expect(fn(statuses[0], 'toString').ok).toBe(false);
      expect(fn('constructor', statuses[0]).ok).toBe(false);
    });
  });
}
