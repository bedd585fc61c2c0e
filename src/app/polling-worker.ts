/**
 * A background loop that runs `pass` every `pollMs`, and again at once while a pass reports a full batch.
 * `stop()` waits for the pass in flight. Used by the webhook retries, reconciliation and pre-order expiry.
 */
import type { Logger } from 'pino';
import type { Worker } from '../runtime.js';

export interface PollingWorkerOptions {
  name: string;
  pollMs: number;
  log: Logger;
  /** One pass; returns how many rows it took. */
  pass: () => Promise<number>;
  /** A pass that took this many rows runs again without waiting (default: never). */
  batchSize?: number;
}

export function createPollingWorker(o: PollingWorkerOptions): Worker {
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;

  const tick = async (): Promise<void> => {
    try {
      let n = await o.pass();
      while (running && o.batchSize !== undefined && n >= o.batchSize) n = await o.pass();
    } catch (err) {
      if (running) o.log.error({ err, worker: o.name }, 'worker pass failed');
    }
  };
  const schedule = (): void => {
    if (!running) return;
    timer = setTimeout(() => {
      current = tick().finally(() => {
        current = undefined;
        schedule();
      });
    }, o.pollMs);
    timer.unref?.();
  };
  return {
    name: o.name,
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
