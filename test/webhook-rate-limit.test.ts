/**
 * The webhook rejection rate limit (flows.md 12 step 4) is shared through the database: two app instances on one
 * PostgreSQL count one limit per source address (60 rejections per minute in total, then 429 on either instance).
 * On PGlite (single instance) the same counter backs the limit; test/webhooks.test.ts covers its answers.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REJECTIONS_PER_MINUTE, RejectionLimiter } from '../src/app/receive-webhook.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

/** POST an unparseable webhook from `localAddress` (the limit is per source address). */
function rejectedWebhook(app: TestApp, localAddress: string): Promise<{ status: number; retryAfter: string | undefined; body: any }> {
  const u = new URL(`${app.url}/webhooks/test`);
  const body = Buffer.from('not a webhook');
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, headers: { 'content-type': 'text/plain', 'content-length': String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(h) ? h[0] : h, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const minute = (): number => Math.floor(Date.now() / 60_000);

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('webhook rejection rate limit shared by two instances on one PostgreSQL', () => {
  let a: TestApp;
  let b: TestApp;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const db = await createTempDatabase();
    drop = db.drop;
    a = await startTestApp({ DATABASE_URL: db.url }, { startWorkers: false });
    b = await startTestApp({ DATABASE_URL: db.url }, { startWorkers: false });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
  });

  it('rejections alternating between the instances: exactly 60 answered 400 in one minute, then 429 on both', async () => {
    // A minute boundary during the burst restarts the count: then the burst runs once more (it takes far less than a minute).
    for (let attempt = 0; attempt < 2; attempt++) {
      const source = `127.0.0.${11 + attempt}`;
      const start = minute();
      const statuses: Record<string, number[]> = { a: [], b: [] };
      const limited: Array<{ retryAfter: string | undefined; body: any }> = [];
      for (let i = 0; i < 40; i++) {
        for (const [name, app] of [['a', a], ['b', b]] as const) {
          const r = await rejectedWebhook(app, source);
          statuses[name]!.push(r.status);
          if (r.status === 429) limited.push(r);
        }
      }
      if (minute() !== start) continue;
      const all = [...statuses.a!, ...statuses.b!];
      expect(all.filter((s) => s === 400)).toHaveLength(REJECTIONS_PER_MINUTE);
      expect(all.filter((s) => s === 429)).toHaveLength(80 - REJECTIONS_PER_MINUTE);
      // each instance alone saw only 40 rejections, below the limit: the 429s come from the shared count
      expect(statuses.a!.slice(-5)).toEqual([429, 429, 429, 429, 429]);
      expect(statuses.b!.slice(-5)).toEqual([429, 429, 429, 429, 429]);
      expect(limited[0]!.body.errors[0]).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
      const wait = Number(limited[0]!.retryAfter);
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(60);
      // another source address is not limited
      expect((await rejectedWebhook(b, '127.0.0.20')).status).toBe(400);
      return;
    }
    throw new Error('two minute boundaries during two short bursts');
  }, 60_000);
});

describe('RejectionLimiter over a counter', () => {
  it('counts in fixed windows, answers the seconds to the end of the window beyond the limit, prunes past windows once per window', async () => {
    const counts = new Map<string, number>();
    const pruned: number[] = [];
    let now = 10 * 60_000 + 15_000;
    const limiter = new RejectionLimiter(
      {
        count: async (source, w) => {
          const k = `${source}@${w}`;
          counts.set(k, (counts.get(k) ?? 0) + 1);
          return counts.get(k)!;
        },
        prune: async (before) => void pruned.push(before),
      },
      2,
      () => now,
    );
    expect(await limiter.reject('x')).toBeNull();
    expect(await limiter.reject('x')).toBeNull();
    expect(await limiter.reject('x')).toBe(45);
    expect(await limiter.reject('y')).toBeNull();
    now += 60_000;
    expect(await limiter.reject('x')).toBeNull();
    expect(pruned).toEqual([10, 11]);
  });
});
