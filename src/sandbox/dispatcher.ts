/**
 * Delivers the sandbox's webhook events (table `sandbox_events`) to each account's registered endpoint and settles
 * pending refunds when their time has come. Events are signed per attempt (`Sandbox-Signature`); a non-2xx answer or
 * none within 10 s is retried with exponential backoff for 24 hours, then the event is `dead`.
 * Safe to run in several instances at once (rows are leased with FOR UPDATE SKIP LOCKED).
 */
import type { Logger } from 'pino';
import type { Worker } from '../runtime.js';
import type { Db } from '../store/db.js';
import { sandboxService, type SandboxRouteOptions } from './routes.js';
import type { SandboxService } from './service.js';
import { sandboxSignal, signatureHeader } from './util.js';

export interface DispatcherOptions {
  db: Db;
  log: Logger;
  service: SandboxService;
  /** First retry delay; doubles per attempt up to `maxRetryDelayMs`. */
  retryBaseMs?: number;
  maxRetryDelayMs?: number;
  deliveryTimeoutMs?: number;
  retryForMs?: number;
  /** Longest sleep between two looks at the tables (other instances may write). */
  pollMs?: number;
}

interface EventRow {
  id: string;
  account_id: string;
  body: string;
  attempts: number;
  created_at: Date;
}

const BATCH = 20;
/**
 * How long a claimed event is reserved. Short, because the in-process sandbox dies with the app (a SIGKILL leaves its
 * claimed events waiting for this lease): 30 s. A batch whose endpoints all time out can outlast it; another instance
 * may then deliver an event twice, which receivers de-duplicate by event id (as with any PSP's retries).
 */
const LEASE_MS = 30_000;

export function retryDelayMs(attempts: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, attempts - 1));
}

export function createSandboxDispatcher(o: DispatcherOptions): Worker {
  const base = o.retryBaseMs ?? 500;
  const maxDelay = o.maxRetryDelayMs ?? 60 * 60_000;
  const timeout = o.deliveryTimeoutMs ?? 10_000;
  const retryFor = o.retryForMs ?? 24 * 60 * 60_000;
  const pollMs = o.pollMs ?? 1000;
  const log = o.log.child({ worker: 'sandbox-webhooks' });

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let again = false;
  const inflight = new Set<AbortController>();

  async function deliver(ev: EventRow): Promise<void> {
    const ep = (await o.db.query<{ url: string; secret: string }>('SELECT url, secret FROM sandbox_webhook_endpoints WHERE account_id=$1', [ev.account_id])).rows[0];
    if (!ep) {
      await o.db.query(`UPDATE sandbox_events SET state='skipped', lease_until=NULL, last_error='no webhook endpoint registered' WHERE id=$1`, [ev.id]);
      return;
    }
    let error: string | undefined;
    const ctl = new AbortController();
    inflight.add(ctl);
    const t = setTimeout(() => ctl.abort(), timeout);
    try {
      const res = await fetch(ep.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'SandboxPSP-Webhooks/1.0', 'sandbox-signature': signatureHeader(ep.secret, ev.body, Math.floor(Date.now() / 1000)) },
        body: ev.body,
        signal: ctl.signal,
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (err) {
      error = ctl.signal.aborted ? `no answer within ${timeout} ms` : `network error: ${(err as Error).message}`;
    } finally {
      clearTimeout(t);
      inflight.delete(ctl);
    }
    if (!error) {
      await o.db.query(`UPDATE sandbox_events SET state='delivered', attempts=attempts+1, lease_until=NULL, last_error=NULL, delivered_at=now() WHERE id=$1`, [ev.id]);
      return;
    }
    const attempts = ev.attempts + 1;
    const now = Date.now();
    const dead = now - new Date(ev.created_at).getTime() >= retryFor;
    await o.db.query('UPDATE sandbox_events SET state=$2, attempts=$3, next_attempt_at=$4, lease_until=NULL, last_error=$5 WHERE id=$1', [
      ev.id,
      dead ? 'dead' : 'pending',
      attempts,
      new Date(now + retryDelayMs(attempts, base, maxDelay)),
      error,
    ]);
    (dead ? log.error.bind(log) : log.debug.bind(log))({ event: ev.id, attempts, error }, dead ? 'sandbox webhook given up after 24 h' : 'sandbox webhook delivery failed; will retry');
  }

  let lastCleanup = 0;
  /** Housekeeping once an hour: finished events after 7 days, idempotency keys after 24 hours. */
  async function cleanup(): Promise<void> {
    if (Date.now() - lastCleanup < 60 * 60_000) return;
    lastCleanup = Date.now();
    await o.db.query(`DELETE FROM sandbox_events WHERE state <> 'pending' AND created_at < $1`, [new Date(Date.now() - 7 * 24 * 60 * 60_000)]);
    await o.db.query('DELETE FROM sandbox_idempotency WHERE created_at < $1', [new Date(Date.now() - 24 * 60 * 60_000)]);
  }

  async function tick(): Promise<void> {
    await cleanup();
    await o.service.settleDueRefunds();
    const now = new Date();
    const claimed = await o.db.query<EventRow>(
      `UPDATE sandbox_events SET lease_until=$2 WHERE id IN (
         SELECT id FROM sandbox_events WHERE state='pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
         ORDER BY seq LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
       RETURNING id, account_id, body, attempts, created_at, seq`,
      [now, new Date(now.getTime() + LEASE_MS)],
    );
    // In order per account, accounts in parallel (one slow endpoint does not hold up the others).
    const rows = (claimed.rows as Array<EventRow & { seq: number }>).sort((a, b) => a.seq - b.seq);
    const byAccount = new Map<string, EventRow[]>();
    for (const r of rows) byAccount.set(r.account_id, [...(byAccount.get(r.account_id) ?? []), r]);
    await Promise.all(
      [...byAccount.values()].map(async (list) => {
        for (const ev of list) {
          if (!running) break;
          await deliver(ev);
        }
      }),
    );
    if (!running) await o.db.query('UPDATE sandbox_events SET lease_until=NULL WHERE id = ANY($1::text[]) AND state=$2', [rows.map((r) => r.id), 'pending']).catch(() => undefined);
    if (rows.length === BATCH) again = true;
  }

  async function nextWakeMs(): Promise<number> {
    const r = await o.db.query<{ at: Date | null }>(
      `SELECT min(at) AS at FROM (
         SELECT min(next_attempt_at) AS at FROM sandbox_events WHERE state='pending'
         UNION ALL SELECT min(settle_at) FROM sandbox_refunds WHERE status='pending') x`,
    );
    const at = r.rows[0]?.at;
    if (!at) return pollMs;
    return Math.max(0, Math.min(pollMs, new Date(at).getTime() - Date.now()));
  }

  function schedule(ms: number): void {
    if (!running) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, ms);
  }

  function run(): void {
    if (!running) return;
    if (current) {
      again = true;
      return;
    }
    timer = undefined;
    current = (async () => {
      let wait = pollMs;
      try {
        do {
          again = false;
          await tick();
        } while (again && running);
        wait = await nextWakeMs();
      } catch (err) {
        if (running) log.error({ err }, 'sandbox dispatcher tick failed');
      } finally {
        current = undefined;
        schedule(wait);
      }
    })();
  }

  const onWritten = (): void => {
    if (!running) return;
    if (current) again = true;
    else schedule(0);
  };

  return {
    name: 'sandbox-webhooks',
    start() {
      if (running) return;
      running = true;
      sandboxSignal.on('written', onWritten);
      schedule(0);
    },
    async stop() {
      running = false;
      sandboxSignal.off('written', onWritten);
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const c of inflight) c.abort();
      await current?.catch(() => undefined);
    },
  };
}

/** The dispatcher for a sandbox mounted with `sandboxRoutes(app, opts)` (same options). */
export function sandboxWorker(opts: { db: Db; log: Logger; config: SandboxRouteOptions['config'] }): Worker {
  return createSandboxDispatcher({ db: opts.db, log: opts.log, service: sandboxService(opts) });
}
