/**
 * The group-commit coalescer (`src/store/coalesce.ts`) with a fake statement runner: a lone call runs alone and at
 * once; calls arriving while a statement is in flight go together into the next one (at most `maxBatch`), per key;
 * a failed batch is retried one call at a time so an error stays with its own caller; an unavailable database fails
 * the whole batch.
 */
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../src/store/coalesce.js';
import { DatabaseUnavailableError } from '../src/store/db.js';

interface Call {
  kind: 'one' | 'many';
  key: string;
  items: number[];
}

function harness(opts: { failMany?: (items: readonly number[]) => unknown; failOne?: (item: number) => unknown; maxBatch?: number; keysOf?: (item: number) => string[]; stallMs?: number } = {}) {
  const calls: Call[] = [];
  let release: Array<() => void> = [];
  const gate = (): Promise<void> => new Promise((r) => release.push(r));
  const c = new Coalescer<number, string>(
    {
      async one(key, item) {
        calls.push({ kind: 'one', key, items: [item] });
        await gate();
        const e = opts.failOne?.(item);
        if (e) throw e;
        return `${key}:${item}`;
      },
      async many(key, items) {
        calls.push({ kind: 'many', key, items: [...items] });
        await gate();
        const e = opts.failMany?.(items);
        if (e) throw e;
        return items.map((i) => `${key}:${i}`);
      },
      ...(opts.keysOf ? { keysOf: opts.keysOf } : {}),
    },
    opts.maxBatch,
    opts.stallMs,
  );
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setImmediate(r));
      const r = release;
      release = [];
      r.forEach((f) => f());
    }
  };
  return { c, calls, flush };
}

describe('Coalescer', () => {
  it('a lone call runs alone, at once', async () => {
    const { c, calls, flush } = harness();
    const p = c.submit('t', 1);
    expect(calls).toEqual([{ kind: 'one', key: 't', items: [1] }]);
    await flush();
    expect(await p).toBe('t:1');
  });

  it('calls arriving while one is in flight share the next statement, each with its own answer; other keys are not held up', async () => {
    const { c, calls, flush } = harness();
    const first = c.submit('t', 1);
    const rest = [2, 3, 4].map((i) => c.submit('t', i));
    const other = c.submit('u', 9);
    expect(calls).toEqual([
      { kind: 'one', key: 't', items: [1] },
      { kind: 'one', key: 'u', items: [9] },
    ]);
    await flush();
    expect(await first).toBe('t:1');
    expect(await Promise.all(rest)).toEqual(['t:2', 't:3', 't:4']);
    expect(await other).toBe('u:9');
    expect(calls[2]).toEqual({ kind: 'many', key: 't', items: [2, 3, 4] });
    expect(calls).toHaveLength(3);
  });

  it('batches hold at most maxBatch calls', async () => {
    const { c, calls, flush } = harness({ maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((i) => c.submit('t', i));
    await flush();
    expect(await Promise.all(all)).toEqual(['t:1', 't:2', 't:3', 't:4', 't:5']);
    expect(calls.map((x) => x.items)).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('calls sharing a unique key never meet in one statement: the later waits for the next batch, the others still go together', async () => {
    // items 12 and 22 share key "2", 13 and 23 and 33 share "3"
    const { c, calls, flush } = harness({ keysOf: (i) => [String(i % 10)] });
    const all = [1, 12, 22, 13, 4, 23, 33, 5].map((i) => c.submit('t', i));
    await flush();
    expect(await Promise.all(all)).toEqual(['t:1', 't:12', 't:22', 't:13', 't:4', 't:23', 't:33', 't:5']);
    expect(calls.map((x) => x.items)).toEqual([[1], [12, 13, 4, 5], [22, 23], [33]]);
  });

  it('a failed batch runs again call by call: only the failing call gets its error', async () => {
    const { c, calls, flush } = harness({ failMany: () => new Error('duplicate key'), failOne: (i) => (i === 3 ? new Error('constraint of 3') : undefined) });
    const all = [1, 2, 3, 4].map((i) => c.submit('t', i).then((v) => v, (e: Error) => `error: ${e.message}`));
    await flush();
    expect(await Promise.all(all)).toEqual(['t:1', 't:2', 'error: constraint of 3', 't:4']);
    expect(calls.map((x) => `${x.kind} ${x.items.join(',')}`)).toEqual(['one 1', 'many 2,3,4', 'one 2', 'one 3', 'one 4']);
  });

  it('an unavailable database fails every call of the batch, without retrying them one by one', async () => {
    const { c, calls, flush } = harness({ failMany: () => new DatabaseUnavailableError('connection refused') });
    const all = [1, 2, 3].map((i) => c.submit('t', i).then((v) => v, (e: Error) => e));
    await flush();
    const out = await Promise.all(all);
    expect(out[0]).toBe('t:1');
    expect(out[1]).toBeInstanceOf(DatabaseUnavailableError);
    expect(out[2]).toBeInstanceOf(DatabaseUnavailableError);
    expect(calls.map((x) => x.kind)).toEqual(['one', 'many']);
  });

  it('after the lane is drained, the next call runs alone again', async () => {
    const { c, calls, flush } = harness();
    const a = c.submit('t', 1);
    await flush();
    await a;
    const b = c.submit('t', 2);
    expect(calls.at(-1)).toEqual({ kind: 'one', key: 't', items: [2] });
    await flush();
    expect(await b).toBe('t:2');
  });

  it('a statement that runs past stallMs no longer holds its line: the calls behind it and new ones go alone at once; once it answers, calls group again', async () => {
    const calls: Call[] = [];
    const gates = new Map<number, () => void>();
    const gate = (item: number): Promise<void> => new Promise((r) => gates.set(item, r));
    const c = new Coalescer<number, string>(
      {
        async one(key, item) {
          calls.push({ kind: 'one', key, items: [item] });
          await gate(item);
          return `${key}:${item}`;
        },
        async many(key, items) {
          calls.push({ kind: 'many', key, items: [...items] });
          await Promise.all(items.map(gate));
          return items.map((i) => `${key}:${i}`);
        },
      },
      64,
      20,
    );
    const stuck = c.submit('t', 1);
    const behind = [c.submit('t', 2), c.submit('t', 3)];
    expect(calls).toHaveLength(1); // 2 and 3 wait for the next statement
    await new Promise((r) => setTimeout(r, 40));
    expect(calls.slice(1)).toEqual([
      { kind: 'one', key: 't', items: [2] },
      { kind: 'one', key: 't', items: [3] },
    ]);
    const late = c.submit('t', 4);
    expect(calls.at(-1)).toEqual({ kind: 'one', key: 't', items: [4] });
    for (const i of [2, 3, 4]) gates.get(i)!();
    expect(await Promise.all([...behind, late])).toEqual(['t:2', 't:3', 't:4']);
    gates.get(1)!();
    expect(await stuck).toBe('t:1');
    await new Promise((r) => setImmediate(r));
    // the lane is free again: a lone call, then the calls behind it share a statement
    const next = c.submit('t', 5);
    const grouped = [c.submit('t', 6), c.submit('t', 7)];
    expect(calls.slice(4)).toEqual([{ kind: 'one', key: 't', items: [5] }]);
    gates.get(5)!();
    await next;
    await new Promise((r) => setImmediate(r));
    expect(calls.at(-1)).toEqual({ kind: 'many', key: 't', items: [6, 7] });
    gates.get(6)!();
    gates.get(7)!();
    expect(await Promise.all(grouped)).toEqual(['t:6', 't:7']);
  });
});
