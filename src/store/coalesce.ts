/**
 * Group commit for autocommit writes: calls of one kind that arrive while an earlier call of the same key is in
 * flight wait and then go to the database together, as one statement (one transaction, one WAL flush, one lock
 * acquisition of shared rows such as the tenant's message clock). A call that finds nothing in flight runs at once and
 * alone, so a server under light load answers exactly as fast as without this; under load the batches grow by
 * themselves with the number of waiting callers (up to `maxBatch`). Reads that every request makes (initialize's
 * look-up of its order) are grouped the same way: one statement answers each caller of the batch.
 *
 * Calls that would collide inside one statement (the same order initialized twice at once: `keysOf` gives the unique
 * keys of an item) never share a batch: a later one waits for the next batch, so it runs after the first committed
 * and finds it, while the rest of its batch still goes together.
 *
 * Each caller still gets its own answer. A batch is atomic (all its writes or none); when it fails with anything
 * but an unavailable database, its calls are run again one by one, so one caller's error (a constraint, a deadlock)
 * is that caller's alone. When the database is unavailable every caller of the batch gets that error (a 503 each).
 *
 * With `stallMs`, a statement that has not answered after that long no longer holds its line (it may wait on a row
 * lock another transaction holds): the calls waiting behind it, and those that arrive until it answers, run at once
 * and alone, as without grouping.
 */
import { isDatabaseUnavailable, type Db, type Queryable } from './db.js';

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

interface Lane<I, O> {
  waiting: Array<Waiting<I, O>>;
  /** The statement in flight has run past `stallMs`: calls go alone until it answers. */
  stalled: boolean;
}

export interface CoalescerRun<I, O> {
  /** Runs several items as one statement; returns one answer per item, in order. */
  many(key: string, items: readonly I[]): Promise<O[]>;
  /** Runs one item alone (a lone caller, and each caller of a failed batch). */
  one(key: string, item: I): Promise<O>;
  /** The keys an item must hold alone within a statement (its unique keys); none when omitted. */
  keysOf?(item: I): Iterable<string>;
}

export class Coalescer<I, O> {
  private readonly lanes = new Map<string, Lane<I, O>>();

  constructor(
    private readonly run: CoalescerRun<I, O>,
    private readonly maxBatch = 64,
    private readonly stallMs?: number,
  ) {}

  /** Resolves with this item's answer once the statement carrying it has committed (or rejects with its error). */
  submit(key: string, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const lane = this.lanes.get(key);
      if (lane?.stalled) {
        this.runAlone(key, { item, resolve, reject });
        return;
      }
      if (lane) {
        lane.waiting.push({ item, resolve, reject });
        return;
      }
      const fresh: Lane<I, O> = { waiting: [], stalled: false };
      this.lanes.set(key, fresh);
      void this.drain(key, fresh, [{ item, resolve, reject }]);
    });
  }

  private async drain(key: string, lane: Lane<I, O>, first: Array<Waiting<I, O>>): Promise<void> {
    let batch = first;
    for (;;) {
      const timer =
        this.stallMs === undefined
          ? undefined
          : setTimeout(() => {
              lane.stalled = true;
              for (const w of lane.waiting.splice(0)) this.runAlone(key, w);
            }, this.stallMs);
      try {
        await this.runBatch(key, batch);
      } finally {
        clearTimeout(timer);
        lane.stalled = false;
      }
      if (lane.waiting.length === 0) break;
      batch = this.nextBatch(lane);
    }
    this.lanes.delete(key);
  }

  private runAlone(key: string, w: Waiting<I, O>): void {
    this.run.one(key, w.item).then(w.resolve, w.reject);
  }

  /** Up to `maxBatch` waiting calls in arrival order, leaving in line (first) those whose keys an earlier one holds. */
  private nextBatch(lane: Lane<I, O>): Array<Waiting<I, O>> {
    const keysOf = this.run.keysOf;
    if (!keysOf) return lane.waiting.splice(0, this.maxBatch);
    const held = new Set<string>();
    const batch: Array<Waiting<I, O>> = [];
    const later: Array<Waiting<I, O>> = [];
    let i = 0;
    for (; i < lane.waiting.length && batch.length < this.maxBatch; i++) {
      const w = lane.waiting[i]!;
      const keys = [...keysOf(w.item)];
      if (keys.some((k) => held.has(k))) {
        later.push(w);
        continue;
      }
      for (const k of keys) held.add(k);
      batch.push(w);
    }
    lane.waiting = [...later, ...lane.waiting.slice(i)];
    return batch;
  }

  private async runBatch(key: string, batch: Array<Waiting<I, O>>): Promise<void> {
    if (batch.length === 1) {
      const w = batch[0]!;
      try {
        w.resolve(await this.run.one(key, w.item));
      } catch (err) {
        w.reject(err);
      }
      return;
    }
    try {
      const out = await this.run.many(
        key,
        batch.map((w) => w.item),
      );
      batch.forEach((w, i) => w.resolve(out[i] as O));
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      // Nothing of the batch was written: each call again, alone, so an error is only its own caller's.
      await Promise.all(
        batch.map(async (w) => {
          try {
            w.resolve(await this.run.one(key, w.item));
          } catch (e) {
            w.reject(e);
          }
        }),
      );
    }
  }
}

/** The pool itself (autocommit statements, which may be grouped), not a caller's transaction or session. */
export const isPool = (q: Queryable): q is Db => typeof (q as Partial<Db>).tx === 'function';

/** One coalescer per database handle for one kind of write: `make` gives its statements on that handle. */
export function coalescerPerDb<I, O>(make: (db: Db) => CoalescerRun<I, O>, maxBatch?: number, stallMs?: number): (db: Db) => Coalescer<I, O> {
  const byDb = new WeakMap<Db, Coalescer<I, O>>();
  return (db) => {
    let c = byDb.get(db);
    if (!c) {
      c = new Coalescer(make(db), maxBatch, stallMs);
      byDb.set(db, c);
    }
    return c;
  };
}
