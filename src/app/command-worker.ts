/**
 * The command processor worker (messages.md 8): claims `received` and due `retrying` rows of `command_inbox` with
 * `FOR UPDATE SKIP LOCKED` and a lease (next_attempt_at moved forward, so a crashed instance's rows come back after
 * the lease), and processes them, several at once. Commands of one tenant and order run one at a time in arrival order:
 * a row is only claimed when no older unfinished row of the same (tenant, orderReference) exists. Woken by `commandInboxSignal`
 * after a commit that stored commands, otherwise polling.
 */
import { commandInboxSignal } from '../messaging/command-inbox.js';
import type { Worker } from '../runtime.js';
import { claimDueCommands, releaseCommands, type InboxCommandRow } from '../store/payment-commands.js';
import type { AppDeps } from './context.js';
import { processCommand } from './process-command.js';

/** A claimed row is reserved this long (> one PSP call's 15 s budget). */
export const COMMAND_LEASE_MS = 20_000;
const BATCH = 20;

/**
 * Commands processed at the same time (each of a different tenant+order, so they never touch the same payment). A
 * command spends most of its time waiting (its transactions' commits, the PSP call), so more run than there are
 * database connections (10): a command holds one only while a statement or transaction runs.
 */
export const COMMAND_CONCURRENCY = 16;

const byArrival = (rows: InboxCommandRow[]): InboxCommandRow[] =>
  rows.sort((a, b) => new Date(a.created_at).getTime() - new Date(b.created_at).getTime() || (a.id < b.id ? -1 : 1));

/**
 * Claims due rows (at most one per tenant+order) and processes them, up to COMMAND_CONCURRENCY at once. Returns how
 * many it took. When stopping, rows not started yet are released for any instance at once instead of after the lease.
 * (One round, for tools and the statement counts; the worker below keeps the lanes full instead.)
 */
export async function runCommandBatch(deps: AppDeps, stopping?: () => boolean): Promise<number> {
  const claimed = byArrival(await claimDueCommands(deps.db, new Date(Date.now() + COMMAND_LEASE_MS), BATCH));
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

/**
 * The worker keeps up to COMMAND_CONCURRENCY commands in flight: it claims as many rows as there are free lanes, and
 * claims again as soon as a command finishes, so one slow command (a PSP call near its 15 s budget) never holds back
 * the others (rounds that waited for their slowest command left lanes idle: capture at c=50 was concurrency-bound, with
 * 15-25 % of the CPU idle). Only one claim runs at a time; every claimed row starts at once.
 */
export function createCommandWorker(deps: AppDeps, opts: { pollMs?: number } = {}): Worker {
  const pollMs = opts.pollMs ?? 500;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let claiming: Promise<void> | undefined;
  let again = false;
  const inFlight = new Set<Promise<void>>();

  const start = (row: InboxCommandRow): void => {
    const p: Promise<void> = processCommand(deps, row)
      .then(
        () => undefined,
        (err: unknown) => deps.log.error({ err }, 'command processing failed'),
      )
      .finally(() => {
        inFlight.delete(p);
        if (running) fill();
      });
    inFlight.add(p);
  };

  const claimRound = async (): Promise<void> => {
    do {
      again = false;
      const room = COMMAND_CONCURRENCY - inFlight.size;
      if (room <= 0) return; // a finishing command claims again
      const claimed = await claimDueCommands(deps.db, new Date(Date.now() + COMMAND_LEASE_MS), Math.min(room, BATCH));
      if (!running) {
        if (claimed.length > 0) await releaseCommands(deps.db, claimed.map((r) => r.id));
        return;
      }
      for (const row of byArrival(claimed)) start(row);
      if (claimed.length === Math.min(room, BATCH)) again = true; // a full claim: there may be more
    } while (running && again);
  };

  /** Claims for the free lanes now (or right after the claim in progress). */
  const fill = (): void => {
    if (!running) return;
    if (claiming) {
      again = true;
      return;
    }
    claiming = claimRound()
      .catch((err: unknown) => {
        if (running) deps.log.error({ err }, 'command worker tick failed');
      })
      .finally(() => {
        claiming = undefined;
        schedule();
      });
  };
  const schedule = (): void => {
    if (!running) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fill, pollMs);
    timer.unref?.();
  };
  const onSignal = (): void => fill();
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
      await claiming;
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
