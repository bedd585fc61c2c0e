/**
 * Kill-and-restart (flows.md 0 rule 3, flows.md 14): the app process dies right after the PSP captured and before the
 * outcome is committed; after a restart the pending capture record is finished with the same idempotency key, so the
 * sandbox shows exactly one capture and exactly one PaymentCaptured is emitted.
 *
 * The crash point is a test-only hook in src/app/capture-payment.ts: with `OAP_TEST_CRASH_AFTER_PSP_CAPTURE=1` the
 * process SIGKILLs itself right after `connector.capture` returns. The project is built like `npm run build` (tsc with
 * tsconfig.build.json), into .tmp/crash-build so a developer's dist/ is not disturbed, and run as
 * `node <build>/src/main.js` with PGlite in a temporary DATA_DIR. The in-process sandbox lives in the same database,
 * so the crash loses nothing of the sandbox.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { freePort } from './helpers/process.js';
import { call, configureTenant, initializeOrder, pay, publish, sandboxPayment, type AppLike } from './helpers/commands.js';

const BUILD_DIR = join(projectRoot, '.tmp', 'crash-build');
const MAIN = join(BUILD_DIR, 'src', 'main.js');
const KEY = `k1:${Buffer.alloc(32, 9).toString('base64')}`;
const T = 'crash-tenant';

let dataDir: string;
let port: number;
const children: ChildProcess[] = [];

interface Proc {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

async function start(extra: Record<string, string> = {}): Promise<Proc> {
  const env = {
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    HOST: '127.0.0.1',
    APP_BASE_URL: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    ENCRYPTION_KEYS: KEY,
    SANDBOX_REFUND_SETTLE_MS: '50',
    LOG_LEVEL: 'warn',
    ...extra,
  };
  const child = spawn(process.execPath, [MAIN], { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const end = Date.now() + 60_000;
  for (;;) {
    if (/listening on/.test(out)) break;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) throw new Error(`app did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, exited, output: () => out };
}

const app: AppLike = { get url() { return `http://127.0.0.1:${port}`; } };

/** Every payment-events message for the tenant available now (acknowledged), in order. */
async function drain(): Promise<Array<{ name: string; payload: any }>> {
  const out: Array<{ name: string; payload: any }> = [];
  for (;;) {
    const r = await call(app, '/event-platform/payment-events?limit=100', { headers: { 'consumer-id': T } });
    expect(r.status).toBe(200);
    if (r.body.length === 0) return out;
    for (const m of r.body) out.push({ name: m.MessageAttributes.transferName, payload: JSON.parse(m.MessageBody) });
    await call(app, '/event-platform/payment-events', { method: 'DELETE', headers: { 'consumer-id': T }, body: { messageIds: r.body.map((m: any) => m.MessageId) } });
  }
}

async function collectUntil(seen: Array<{ name: string; payload: any }>, ok: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok() && Date.now() < end) {
    seen.push(...(await drain()));
    if (!ok()) await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  // As `npm run build`; tsc exits non-zero when any file has a type error but still emits.
  const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR], { cwd: projectRoot, encoding: 'utf8' });
  if (!existsSync(MAIN)) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  dataDir = mkdtempSync(join(tmpdir(), 'oap-crash-'));
  port = await freePort();
}, 180_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('crash between the PSP capture and the commit', () => {
  it('after a restart the capture is finished with the same idempotency key: one capture at the sandbox, one PaymentCaptured', async () => {
    const first = await start({ OAP_TEST_CRASH_AFTER_PSP_CAPTURE: '1' });
    await configureTenant(app, T);
    const o = await initializeOrder(app, T, { 201: 3000, 202: 7000 });
    await pay(app, o.transactionId);
    const seen: Array<{ name: string; payload: any }> = [];
    await collectUntil(seen, () => seen.some((m) => m.name === 'PaymentAuthorized'), 30_000);
    expect(seen.map((m) => m.name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);

    // Partial capture (3000 of 10000): a second capture at the PSP would show amountCaptured 6000.
    await publish(app, T, 'CapturePayment', { orderReference: o.orderReference, orderItemIds: [201], amount: 3000, currencyIsoCode: 'EUR' });
    const died = await Promise.race([first.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(died, first.output()).toEqual({ code: null, signal: 'SIGKILL' });

    await start(); // no crash flag
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(3000); // the PSP did capture before the crash
    await collectUntil(seen, () => seen.some((m) => m.name === 'PaymentCaptured'), 90_000);
    await new Promise((r) => setTimeout(r, 1_500)); // let any late webhook / duplicate show up
    seen.push(...(await drain()));

    expect(seen.filter((m) => m.name === 'PaymentCaptured')).toEqual([
      { name: 'PaymentCaptured', payload: { orderReference: o.orderReference, orderItemIds: [201], amount: 3000, currencyIsoCode: 'EUR' } },
    ]);
    expect(seen.map((m) => m.name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized', 'PaymentUpdated', 'PaymentCaptured']);
    const psp = await sandboxPayment(app, o.transactionId);
    expect(psp).toMatchObject({ amountCaptured: 3000, amountCapturable: 7000 });
  }, 240_000);
});
