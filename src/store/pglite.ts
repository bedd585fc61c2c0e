/**
 * The embedded database (PGlite) behind the `Db` port: opening it, named statements, and the engine that runs
 * statements and transactions on it. The engine runs either in the server's thread or, by default, in a worker
 * thread of its own (`pglite-thread.ts`, DATABASE_EMBEDDED_THREAD): PGlite is PostgreSQL compiled to WebAssembly,
 * and parsing, planning and executing SQL there took 60 % of the event loop's time on the capture path (README
 * "Benchmark"). `db.ts` keeps what does not depend on the thread: statement naming, counting, the retry of a refused
 * plan, after-commit callbacks.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const PGLITE_SHARED_BUFFERS = '16MB';
/** int8/bigint columns come back as JS numbers on both drivers (money fits in 2^53): `db.ts` uses these for `pg` too. */
export const INT8_OID = 20;
export const int8ToNumber = (v: string): number => Number(v);

/** Where the embedded database lives. */
export type LiteLocation = { kind: 'pglite'; dataDir: string } | { kind: 'pglite-memory' };

/** What one statement returns across the engine's boundary (plain data: it may cross threads). */
export interface LiteResult {
  rows: unknown[];
  affectedRows: number;
}

/** The operations of the embedded database engine, the same in the server's thread and in a worker thread. */
export interface LiteEngineApi {
  readonly description: string;
  /** One statement on its own (autocommit; waits for an open transaction). `name`: run it as a named statement. */
  run(sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult>;
  /**
   * Opens a transaction (waits for an open one to end) and runs its first statement; returns its handle and the
   * statement's result. When that statement fails the transaction is rolled back and ended.
   */
  beginWith(sql: string, params: readonly unknown[], name: string | undefined): Promise<{ tx: number; result: LiteResult }>;
  /** One statement inside transaction `tx`. */
  runIn(tx: number, sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult>;
  /** Commits (`commit`) or rolls back transaction `tx`; rejects when the commit failed (it was rolled back). */
  end(tx: number, commit: boolean): Promise<void>;
  /** One or more statements without parameters (migrations, sessions). */
  exec(sql: string): Promise<void>;
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

// Minimal structural types of the PGlite instance and protocol helpers we use (keeps the import lazy).
type LiteResults<T> = { rows: T[]; affectedRows?: number };
interface LiteMessage {
  name: string;
  dataTypeIDs?: number[];
}
interface LiteTx {
  query<R>(sql: string, params?: unknown[]): Promise<LiteResults<R>>;
}
interface PGliteLike {
  query<T>(sql: string, params?: unknown[]): Promise<LiteResults<T>>;
  transaction<T>(cb: (tx: LiteTx) => Promise<T>): Promise<T>;
  exec(sql: string): Promise<unknown>;
  listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>;
  _checkReady(): Promise<void>;
  execProtocolStream(message: Uint8Array, options?: { syncToFs?: boolean }): Promise<LiteMessage[]>;
  syncToFs(): Promise<void>;
  serializers: Record<number | string, (x: unknown) => string>;
  parsers: Record<number | string, unknown>;
}
interface LiteProtocol {
  serialize: {
    parse(o: { name: string; text: string }): Uint8Array;
    describe(o: { type: 'S'; name: string }): Uint8Array;
    bind(o: { statement: string; values: Array<string | null> }): Uint8Array;
    execute(o: Record<string, never>): Uint8Array;
    sync(): Uint8Array;
  };
  parseResults(messages: LiteMessage[], parsers: Record<number | string, unknown>): Array<LiteResults<unknown>>;
}

/**
 * Named statements on PGlite (DATABASE_PREPARED_STATEMENTS, the same policy as on PostgreSQL): PGlite's own `query`
 * sends an unnamed Parse, so its one backend parses and plans every statement on every run. A repeated text is parsed
 * once (Parse with a name, Describe for its parameter types and its row description); each run is then Bind, Execute
 * and Sync, the row description kept from the first time (README "Benchmark"). Messages go through PGlite's public
 * protocol interface under its query lock; the caller holds the transaction lock (an autocommit statement) or runs
 * inside `transaction` (a statement of the open transaction).
 */
class LiteStatements {
  private readonly prepared = new Map<string, { types: number[]; rowDescription: LiteMessage | undefined }>();
  constructor(
    private readonly lite: PGliteLike,
    private readonly protocol: LiteProtocol,
  ) {}

  run<T>(name: string, sql: string, params: readonly unknown[]): Promise<LiteResults<T>> {
    const { serialize } = this.protocol;
    const send = (m: Uint8Array): Promise<LiteMessage[]> => this.lite.execProtocolStream(m, { syncToFs: false });
    return this.lite.runExclusive(async () => {
      let st = this.prepared.get(name);
      if (st === undefined) {
        let described: LiteMessage[];
        try {
          described = await send(Buffer.concat([serialize.parse({ name, text: sql }), serialize.describe({ type: 'S', name })]));
        } catch (err) {
          await send(serialize.sync());
          throw err;
        }
        st = { types: described.find((m) => m.name === 'parameterDescription')?.dataTypeIDs ?? [], rowDescription: described.find((m) => m.name === 'rowDescription') };
        this.prepared.set(name, st);
      }
      const types = st.types;
      const values = params.map((v, i) => {
        if (v === null || v === undefined) return null;
        const serializer = this.lite.serializers[types[i]!];
        return serializer ? serializer(v) : String(v);
      });
      // Bind, Execute and Sync in one call: the backend runs them in order (after an error it skips to the Sync).
      const out = await send(Buffer.concat([serialize.bind({ statement: name, values }), serialize.execute({}), serialize.sync()]));
      if (st.rowDescription) out.unshift(st.rowDescription);
      return this.protocol.parseResults(out, this.lite.parsers)[0] as LiteResults<T>;
    });
  }
}

const ROLLBACK_REQUESTED = Symbol('rollback requested');
const result = (r: LiteResults<unknown>): LiteResult => ({ rows: r.rows, affectedRows: r.affectedRows ?? 0 });

/** The engine on a PGlite instance of this thread. */
export class LiteEngine implements LiteEngineApi {
  private readonly named: LiteStatements;
  private readonly open = new Map<number, { t: LiteTx; finish: (commit: boolean) => void; done: Promise<void> }>();
  private nextTx = 0;
  constructor(
    private readonly lite: PGliteLike,
    protocol: LiteProtocol,
    readonly description: string,
  ) {
    this.named = new LiteStatements(lite, protocol);
  }

  async run(sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult> {
    if (name === undefined) return result(await this.lite.query(sql, params as unknown[]));
    await this.lite._checkReady();
    const r = await this.lite._runExclusiveTransaction(() => this.named.run(name, sql, params));
    await this.lite.syncToFs();
    return result(r);
  }

  /** PGlite's own `transaction` (its lock, BEGIN, COMMIT or ROLLBACK, one sync at the end), held open until `end`. */
  private async begin(): Promise<number> {
    let started!: (t: LiteTx) => void;
    const ready = new Promise<LiteTx>((r) => (started = r));
    let finish!: (commit: boolean) => void;
    const decided = new Promise<boolean>((r) => (finish = r));
    const done = this.lite
      .transaction(async (t) => {
        started(t);
        if (!(await decided)) throw ROLLBACK_REQUESTED;
      })
      .catch((err: unknown) => {
        if (err !== ROLLBACK_REQUESTED) throw err;
      });
    const t = await Promise.race([ready, done.then(() => undefined)]);
    if (t === undefined) throw new Error('the embedded database ended the transaction before it started');
    const id = ++this.nextTx;
    this.open.set(id, { t, finish, done });
    return id;
  }

  async beginWith(sql: string, params: readonly unknown[], name: string | undefined): Promise<{ tx: number; result: LiteResult }> {
    const tx = await this.begin();
    try {
      return { tx, result: await this.runIn(tx, sql, params, name) };
    } catch (err) {
      await this.end(tx, false).catch(() => undefined);
      throw err;
    }
  }

  async runIn(tx: number, sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult> {
    const open = this.open.get(tx);
    if (!open) throw new Error('no such transaction on the embedded database');
    return result(name === undefined ? await open.t.query(sql, params as unknown[]) : await this.named.run(name, sql, params));
  }

  async end(tx: number, commit: boolean): Promise<void> {
    const open = this.open.get(tx);
    if (!open) return;
    this.open.delete(tx);
    open.finish(commit);
    await open.done;
  }

  async exec(sql: string): Promise<void> {
    await this.lite.exec(sql);
  }

  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    return this.lite.listen(channel, onNotify);
  }

  async close(): Promise<void> {
    await this.lite.close();
  }
}

/** Opens PGlite at `where` (creating the data directory on the first start) in this thread. */
export async function openLiteEngine(where: LiteLocation): Promise<LiteEngine> {
  const { PGlite, protocol, parse } = await import('@electric-sql/pglite');
  const liteProtocol = { serialize: protocol.serialize, parseResults: parse.parseResults } as unknown as LiteProtocol;
  // Memory (README "Benchmark"): shared_buffers 16MB instead of PGlite's 128MB saves ~100 MB RSS with no
  // measurable throughput loss on this workload; relaxedDurability stays off (payments must survive a crash).
  // wal_init_zero off: a new 16 MB WAL segment is created at its size instead of being written full of zeros first,
  // which held the one connection for 60-80 ms every 16 MB of WAL (the longest waits of webhook answers in a burst);
  // PostgreSQL reads a segment's records by their page headers either way.
  const options = {
    parsers: { [INT8_OID]: int8ToNumber },
    relaxedDurability: false,
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`, '-c', 'wal_init_zero=off'],
  };
  if (where.kind === 'pglite-memory') {
    return new LiteEngine((await PGlite.create(options)) as unknown as PGliteLike, liteProtocol, 'PGlite (in memory)');
  }
  mkdirSync(where.dataDir, { recursive: true });
  const dir = join(where.dataDir, 'pgdata');
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    // First start: initdb runs in a second WASM instance whose ~400 MB stay referenced by the PGlite
    // object; closing and reopening lets them go (RSS about halves on the first start).
    await ((await PGlite.create(dir, options)) as unknown as PGliteLike).close();
  }
  return new LiteEngine((await PGlite.create(dir, options)) as unknown as PGliteLike, liteProtocol, `PGlite ${dir}`);
}
