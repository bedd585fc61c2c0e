/**
 * The command processor worker (messages.md 8): claims `received` and due `retrying` rows of `command_inbox` with
 * `FOR UPDATE SKIP LOCKED` and a lease (next_attempt_at moved forward, so a crashed instance's rows come back after
 * the lease), and processes them, several at once. Commands of one tenant and order run one at a time in arrival order:
 * a row is only claimed when no older unfinished row of the same (tenant, orderReference) exists. Woken by `commandInboxSignal`
 * after a commit that stored commands, otherwise polling.
 */
import { commandInboxSignal } from '../messaging/command-inbox.js';
import type { Worker } from '../runtime.js';
import { claimDueCommands, releaseCommands } from '../store/payment-commands.js';
import type { AppDeps } from './context.js';
import { processCommand } from './process-command.js';

/** A claimed row is reserved this long (> one PSP call's 15 s budget). */
export const COMMAND_LEASE_MS = 20_000;
const BATCH = 20;

/** Claimed commands processed at the same time (each is a different tenant+order, so they never touch the same payment). */
export const COMMAND_CONCURRENCY = 8;

/**
 * Claims due rows (at most one per tenant+order) and processes them, up to COMMAND_CONCURRENCY at once. Returns how
 * many it took. When stopping, rows not started yet are released for any instance at once instead of after the lease.
 */
export async function runCommandBatch(deps: AppDeps, stopping?: () => boolean): Promise<number> {
  const claimed = await claimDueCommands(deps.db, new Date(Date.now() + COMMAND_LEASE_MS), BATCH);
  claimed.sort((a, b) => new Date(a.created_at).getTime() - new Date(b.created_at).getTime() || (a.id < b.id ? -1 : 1));
  let next = 0;
  const unstarted: string[] = [];
  const lane = async (): Promise<void> => {
    while (next < claimed.length) {
      const row = claimed[next++]!;
      if (stopping?.()) {
        unstarted.push(row.id);
        continue;
      }
      await processCommand(deps, row);
    }
  };
  await Promise.all(Array.from({ length: Math.min(COMMAND_CONCURRENCY, claimed.length) }, lane));
  if (unstarted.length > 0) await releaseCommands(deps.db, unstarted);
  return claimed.length;
}

export function createCommandWorker(deps: AppDeps, opts: { pollMs?: number } = {}): Worker {
  const pollMs = opts.pollMs ?? 500;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let again = false;

  const tick = async (): Promise<void> => {
    try {
      let n: number;
      do {
        again = false;
        n = await runCommandBatch(deps, () => !running);
      } while (running && (n > 0 || again));
    } catch (err) {
      if (running) deps.log.error({ err }, 'command worker tick failed');
    }
  };
  const run = (): void => {
    if (!running) return;
    if (current) {
      again = true;
      return;
    }
    if (timer) clearTimeout(timer);
    current = tick().finally(() => {
      current = undefined;
      schedule();
    });
  };
  const schedule = (): void => {
    if (!running) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, pollMs);
    timer.unref?.();
  };
  const onSignal = (): void => run();
  return {
    name: 'command-processor',
    start() {
      if (running) return;
      running = true;
      commandInboxSignal.on('received', onSignal);
      schedule();
    },
    async stop() {
      running = false;
      commandInboxSignal.off('received', onSignal);
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
