/**
 * A whole order on the local transport, as a Spryker shop sees it (flows.md 4, 8, 10): authorize, two partial
 * captures, one partial refund, a refund of the rest — commands published to /event-platform/payment-commands, events
 * consumed from GET /event-platform/payment-events (Consumer-Id = tenant) and acknowledged with DELETE, read back as
 * the exact sequence. The script is shared with the rabbitmq and http transports (order-lifecycle-transports.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { call, publish } from './helpers/commands.js';
import { runOrderLifecycle, type ReceivedEvent, type ShopSide } from './helpers/order-lifecycle.js';

let app: TestApp;
const T = 'lifecycle-tenant';

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
});
afterAll(async () => {
  await app?.close();
});

/** The shop on the local Event Platform: publish with POST, consume with GET (Consumer-Id = tenant) and DELETE. */
const localShop = (): ShopSide => ({
  publishCommand: async (tenant, name, payload) => {
    await publish(app, tenant, name, payload);
  },
  receiveEvents: async (tenant, count, timeoutMs = 30_000) => {
    const out: ReceivedEvent[] = [];
    const end = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < end) {
      const r = await call(app, '/event-platform/payment-events?limit=100', { headers: { 'consumer-id': tenant } });
      expect(r.status).toBe(200);
      for (const m of r.body as any[]) out.push({ name: m.MessageAttributes.transferName, payload: JSON.parse(m.MessageBody), messageId: m.MessageId });
      if (r.body.length > 0) {
        const ack = await call(app, '/event-platform/payment-events', { method: 'DELETE', headers: { 'consumer-id': tenant }, body: { messageIds: r.body.map((m: any) => m.MessageId) } });
        expect(ack.status).toBe(204);
      } else await new Promise((res) => setTimeout(res, 50));
    }
    return out;
  },
});

describe('order lifecycle on the local transport', () => {
  it('authorize, two partial captures, a partial refund, a refund of the rest: the exact event sequence', async () => {
    await runOrderLifecycle(app, T, localShop());
  });
});
