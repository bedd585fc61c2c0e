/**
 * Fault suite: the PostgreSQL connection cut for 20 s under load, through a TCP proxy the test runs between the app
 * process and PostgreSQL. The process stays alive, answers 503 (with Retry-After) meanwhile and /health all along,
 * recovers by itself once the proxy is back, and every payment completes exactly once. The sandbox PSP runs on its
 * own (SANDBOX_PSP_URL, its own database, not behind the proxy), as a real PSP would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureFaultTenant, exactlyOnce, FaultClient, hubEvents, paymentLife, printFigures, publishViaEventPlatform, Rows, runPayments } from './helpers/fault.js';
import { ensureBuild, freePort, startAppProcess, type AppProcess } from './helpers/process.js';
import { startStandaloneSandbox, type StandaloneSandbox } from '../src/sandbox/standalone.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();
const KEY = `k1:${Buffer.alloc(32, 5).toString('base64')}`;
const T = 'fault-dbcut';
const CUT_MS = 20_000;
const PAYMENTS = 12;

describe.skipIf(!pgOk)('fault: database connection cut for 20 s', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let proc: AppProcess | undefined;
  let rows: Rows;
  let proxy: TcpProxy;
  let pspTemp: Awaited<ReturnType<typeof createTempDatabase>>;
  let psp: StandaloneSandbox;
  let pspRows: Rows;

  beforeAll(async () => {
    await ensureBuild();
    temp = await createTempDatabase();
    rows = new Rows(temp.url);
    proxy = TcpProxy.forUrl(temp.url, 5432);
    await proxy.start();
    pspTemp = await createTempDatabase();
    psp = await startStandaloneSandbox({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: pspTemp.url, LOG_LEVEL: 'silent', SANDBOX_REFUND_SETTLE_MS: '50' });
    pspRows = new Rows(pspTemp.url);
  }, 240_000);
  afterAll(async () => {
    if (proc?.alive()) proc.child.kill('SIGKILL');
    await proxy?.cut();
    await rows?.close();
    await temp?.drop();
    await psp?.close();
    await pspRows?.close();
    await pspTemp?.drop();
  });

  it('stays up, answers 503 and /health during the cut, recovers by itself, loses and duplicates nothing', async () => {
    const port = await freePort();
    proc = await startAppProcess(port, { DATABASE_URL: proxy.via(temp.url), ENCRYPTION_KEYS: KEY, SANDBOX_PSP_URL: `${psp.url}/sandbox` });
    const url = `http://127.0.0.1:${port}`;
    const client = new FaultClient(() => [url]);
    const pspClient = new FaultClient(() => [psp.url]);
    await configureFaultTenant(client, T);

    let recoveryMs = 0;
    const during: { health: number[]; ready: number[]; retryAfter: string | null; status: number } = { health: [], ready: [], retryAfter: null, status: 0 };
    const cutter = (async () => {
      await new Promise((r) => setTimeout(r, 2_000));
      await proxy.cut();
      const end = Date.now() + CUT_MS;
      while (Date.now() < end) {
        await new Promise((r) => setTimeout(r, 2_000));
        during.health.push((await fetch(`${url}/health`).catch(() => null))?.status ?? 0);
        during.ready.push((await fetch(`${url}/ready`).catch(() => null))?.status ?? 0);
        const r = await fetch(`${url}/private/initialize-payment`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-tenant-identifier': T }, body: '{"orderData":{"orderReference":"DE--cut","grandTotal":100,"currencyCode":"EUR","paymentMethod":"Credit Card","items":[]},"redirectSuccessUrl":"https://s.example/ok","redirectCancelUrl":"https://s.example/c"}' }).catch(() => null);
        if (r) {
          if (r.status >= 500) client.fiveXX++;
          during.status = r.status;
          during.retryAfter = r.headers.get('retry-after');
          await r.text();
        }
      }
      await proxy.start();
      const t0 = Date.now();
      for (;;) {
        if ((await fetch(`${url}/ready`).catch(() => null))?.status === 200) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      recoveryMs = Date.now() - t0;
    })();
    const runs = await runPayments(PAYMENTS, 4, (run) => paymentLife(client, rows, T, publishViaEventPlatform(client), run, pspClient));
    await cutter;
    const { lost, duplicated } = await exactlyOnce(rows, pspRows, T, runs, hubEvents(rows, T));
    printFigures('db-cut-20s', { kills: 0, payments: runs.length, lost, duplicated, fiveXX: client.fiveXX, recoveryMs });
    expect(proc.alive()).toBe(true);
    expect(proc.output()).not.toMatch(/Unhandled|uncaught/i);
    expect(during.health.every((s) => s === 200)).toBe(true);
    expect(during.ready.every((s) => s === 503)).toBe(true);
    expect(during.status).toBe(503);
    expect(during.retryAfter).toMatch(/^\d+$/);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
  }, 150_000);
});
