import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addReadinessCheck, publicOpenApi } from '../src/http/ops.js';
import { CHANNEL_MESSAGES } from '../src/messaging/asyncapi.js';
import { startTestApp, type TestApp } from './helpers/app.js';

function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl: Record<string, string> = {};
    for (const part of (m[3] ?? '').match(/[a-zA-Z_]+="[^"]*"/g) ?? []) {
      const i = part.indexOf('=');
      lbl[part.slice(0, i)] = part.slice(i + 2, -1);
    }
    if (Object.entries(labels).every(([k, v]) => lbl[k] === v)) return Number(m[4]);
  }
  return undefined;
}

describe('operational endpoints', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({}, { startWorkers: false });
  });
  afterAll(async () => {
    await app.close();
  });

  it('GET /health answers 200 {status: "ok"}', async () => {
    const r = await app.request('/health');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  it('GET /ready answers 200 when the database is reachable, migrations applied and the transport connected', async () => {
    const r = await app.request('/ready');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', transport: 'ok' } });
  });

  it('GET /ready answers 503 naming a pending migration', async () => {
    const last = await app.deps.db.query<{ version: string }>('SELECT max(version) AS version FROM schema_migrations');
    const version = last.rows[0]!.version;
    await app.deps.db.query('DELETE FROM schema_migrations WHERE version = $1', [version]);
    try {
      const r = await app.request('/ready');
      expect(r.status).toBe(503);
      expect(r.body.status).toBe('unavailable');
      expect(r.body.checks.migrations).toBe('1 pending');
      expect(r.body.reasons).toEqual(['migrations: 1 pending']);
    } finally {
      await app.deps.db.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
    }
    expect((await app.request('/ready')).status).toBe(200);
  });

  it('GET /ready answers 503 while the transport reports it is not connected', async () => {
    let connected = false;
    addReadinessCheck(app.deps, 'transport', () => (connected ? null : 'rabbitmq: not connected'));
    const down = await app.request('/ready');
    expect(down.status).toBe(503);
    expect(down.body.checks.transport).toBe('rabbitmq: not connected');
    expect(down.body.reasons).toEqual(['transport: rabbitmq: not connected']);
    connected = true;
    const up = await app.request('/ready');
    expect(up.status).toBe(200);
    expect(up.body.checks.transport).toBe('ok');
  });

  it('GET /metrics serves Prometheus text with per-route request counts and latency', async () => {
    await app.request('/health');
    await app.request('/health');
    await app.request('/definitely-unknown');
    const r = await app.request('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(metricValue(r.text, 'http_requests_total', { route: '/health', method: 'GET', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(r.text, 'http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(r.text, 'http_request_duration_seconds_count', { route: '/health', method: 'GET' })).toBeGreaterThanOrEqual(2);
    expect(r.text).toContain('process_resident_memory_bytes');
    // the route label is the pattern, never the raw URL
    expect(r.text).not.toContain('definitely-unknown');
  });

  it('GET /metrics reports outbox depth and the age of the oldest pending row at scrape time', async () => {
    const before = await app.request('/metrics');
    expect(metricValue(before.text, 'outbox_pending')).toBe(0);
    expect(metricValue(before.text, 'outbox_oldest_pending_age_seconds')).toBe(0);
    const insert = (id: string, state: string, age: string): Promise<unknown> =>
      app.deps.db.query(
        `INSERT INTO outbox (id, tenant_identifier, channel, message_name, ordering_key, attributes, payload, message_timestamp, state, created_at)
         VALUES ($1, 't-ops', 'app-events', 'AppConfigUpdated', 't-ops/config', '{}', '{}', '2025-01-01T00:00:00.000000', $2, now() - $3::interval)`,
        [id, state, age],
      );
    await insert('ops-1', 'pending', '2 hours');
    await insert('ops-2', 'pending', '1 minute');
    await insert('ops-3', 'dead', '5 days');
    await insert('ops-4', 'delivered', '3 days');
    try {
      const r = await app.request('/metrics');
      expect(metricValue(r.text, 'outbox_pending')).toBe(2);
      expect(metricValue(r.text, 'outbox_dead')).toBe(1);
      const age = metricValue(r.text, 'outbox_oldest_pending_age_seconds')!;
      expect(age).toBeGreaterThanOrEqual(7200);
      expect(age).toBeLessThan(3 * 3600);
    } finally {
      await app.deps.db.query(`DELETE FROM outbox WHERE id LIKE 'ops-%'`);
    }
  });

  it('GET /openapi.json serves an OpenAPI 3.1 document including the operational endpoints', async () => {
    const r = await app.request('/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    expect(Object.keys(r.body.paths)).toEqual(expect.arrayContaining(['/health', '/ready', '/metrics', '/openapi.json', '/asyncapi.json']));
    expect(Object.keys(r.body.paths).filter((p) => p.startsWith('/sandbox'))).toEqual([]);
    expect(r.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('the OpenAPI document marks bearer-protected endpoints', () => {
    const doc = publicOpenApi({
      openapi: '3.1.0',
      paths: {
        '/private/configure': { post: { responses: {} } },
        '/payments': { post: { responses: {} } },
        '/event-platform/{channel}': { get: { responses: {} } },
        '/webhooks': { post: { responses: {} } },
        '/sandboxes-are-not-hidden': { get: { responses: {} } },
      },
    }) as { paths: Record<string, Record<string, { security?: unknown }>> };
    expect(Object.keys(doc.paths).sort()).toEqual(['/event-platform/{channel}', '/payments', '/private/configure', '/sandboxes-are-not-hidden', '/webhooks']);
    expect(doc.paths['/private/configure']!.post!.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/payments']!.post!.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/event-platform/{channel}']!.get!.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/webhooks']!.post!.security).toBeUndefined();
  });

  it('GET /asyncapi.json lists the five channels with their messages and payload schemas', async () => {
    const r = await app.request('/asyncapi.json');
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc.asyncapi).toBe('2.6.0');
    expect(Object.keys(doc.channels).sort()).toEqual(['app-events', 'merchant-app-events', 'payment-commands', 'payment-events', 'payment-method-commands']);
    const namesOf = (ch: string): string[] => {
      const op = doc.channels[ch].subscribe ?? doc.channels[ch].publish;
      return op.message.oneOf.map((m: { $ref: string }) => m.$ref.split('/').pop());
    };
    expect(namesOf('payment-method-commands')).toEqual(['AddPaymentMethod', 'UpdatePaymentMethod', 'DeletePaymentMethod']);
    expect(namesOf('app-events')).toEqual(['AppConfigUpdated']);
    expect(namesOf('merchant-app-events')).toEqual(['ReadyForMerchantAppOnboarding', 'MerchantAppOnboardingStatusChanged']);
    expect(namesOf('payment-events')).toEqual(expect.arrayContaining(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized', 'PaymentCaptured', 'PaymentRefundFailed', 'PaymentUnderpaid']));
    expect(namesOf('payment-events')).toHaveLength(12);
    expect(namesOf('payment-commands')).toEqual(expect.arrayContaining(['CapturePayment', 'CancelPayment', 'RefundPayment']));
    // app → tenant channels are `subscribe` (the app sends), payment-commands is `publish` (the app receives)
    expect(doc.channels['payment-events'].subscribe).toBeDefined();
    expect(doc.channels['payment-commands'].publish).toBeDefined();
    for (const ch of Object.keys(CHANNEL_MESSAGES)) {
      for (const name of namesOf(ch)) {
        expect(doc.components.messages[name]?.payload?.type, name).toBe('object');
      }
    }
    expect(doc.components.messages.PaymentAuthorized.payload.required).toEqual(['orderReference', 'orderItemIds', 'amount', 'currencyIsoCode']);
    expect(doc.components.messages.AppConfigUpdated.payload.required).toEqual(['appIdentifier', 'status', 'isActive', 'config', 'messageChannels']);
    expect(doc.components.messages.PaymentCreated.payload.required).toEqual(['paymentReference', 'details']);
  });
});

describe('/ready with an unreachable database', () => {
  it('answers 503 naming the database', async () => {
    const app = await startTestApp({}, { startWorkers: false });
    const realClose = app.deps.db.close.bind(app.deps.db);
    try {
      await realClose();
      (app.deps.db as { close: () => Promise<void> }).close = async () => {};
      const r = await app.request('/ready');
      expect(r.status).toBe(503);
      expect(r.body.checks.database).toBe('unreachable');
      expect(r.body.reasons[0]).toMatch(/^database: unreachable/);
      const h = await app.request('/health');
      expect(h.status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
