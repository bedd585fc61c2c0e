/**
 * A background loop that runs `pass` every `pollMs`, and again at once while a pass reports a full batch.
 * `stop()` waits for the pass in flight. `wakeOn`: a signal that runs a pass without waiting for the timer. Used by the webhook retries, reconciliation and pre-order expiry.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Worker } from '../runtime.js';

export interface PollingWorkerOptions {
  name: string;
  pollMs: number;
  log: Logger;
  /** One pass; returns how many rows it took. `stopping` aborts on stop(): leave the rest of the batch, release its leases. */
  pass: (stopping: AbortSignal) => Promise<number>;
  /** A pass that took this many rows runs again without waiting (default: never). */
  batchSize?: number;
  /** Runs a pass at once (or right after the one in flight) whenever this emitter emits `event`; not while backing off. */
  wakeOn?: { emitter: EventEmitter; event: string };
}

export function createPollingWorker(o: PollingWorkerOptions): Worker {
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopping = new AbortController();

  let failures = 0;
  let wakeRequested = false;
  const tick = async (): Promise<void> => {
    try {
      let n = await o.pass(stopping.signal);
      while (running && o.batchSize !== undefined && n >= o.batchSize) n = await o.pass(stopping.signal);
      failures = 0;
    } catch (err) {
      // e.g. the database is away: back off (pollMs doubling to 5 s) and keep going
      failures++;
      if (running && (failures === 1 || failures % 10 === 0)) o.log.error({ err, worker: o.name, failures }, 'worker pass failed; backing off');
    }
  };
  const run = (): void => {
    current = tick().finally(() => {
      current = undefined;
      schedule();
    });
  };
  const schedule = (): void => {
    if (!running) return;
    const woken = wakeRequested && failures === 0;
    wakeRequested = false;
    const delay = woken ? 0 : failures === 0 ? o.pollMs : Math.max(o.pollMs, Math.min(5_000, o.pollMs * 2 ** Math.min(failures, 10)));
    timer = setTimeout(run, delay);
    timer.unref?.();
  };
  const wake = (): void => {
    if (!running || failures > 0) return;
    if (current) {
      wakeRequested = true; // the pass in flight may have claimed before the new work was stored
      return;
    }
    if (timer) clearTimeout(timer);
    timer = undefined;
    run();
  };
  return {
    name: o.name,
    start() {
      if (running) return;
      running = true;
      stopping = new AbortController();
      o.wakeOn?.emitter.on(o.wakeOn.event, wake);
      schedule();
    },
    async stop() {
      running = false;
      o.wakeOn?.emitter.off(o.wakeOn.event, wake);
      stopping.abort();
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
