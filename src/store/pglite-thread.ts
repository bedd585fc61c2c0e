/**
 * The embedded database in a worker thread of its own (DATABASE_EMBEDDED_THREAD, default on): the server's thread
 * sends each statement as a message and gets plain rows back, so PostgreSQL's work in WebAssembly no longer shares the
 * event loop with HTTP and the app (README "Benchmark"). The worker (`pglite-worker.ts`) runs the same `LiteEngine`
 * the server's thread would; PGlite's own locks order statements and transactions there as they did here.
 *
 * Errors cross the boundary as their name, message, stack and plain fields (SQLSTATE `code`, `constraint`, ...), so
 * callers see what PGlite threw. When the thread dies every open and later call fails as an unavailable database
 * (SQLSTATE 57P01): the server answers 503 and reports it instead of waiting forever.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { projectRoot } from '../paths.js';
import type { LiteEngineApi, LiteLocation, LiteResult } from './pglite.js';

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  props: Record<string, string | number | boolean | null>;
}

export type WorkerRequest =
  | { id: number; op: 'run'; sql: string; params: readonly unknown[]; name: string | undefined }
  | { id: number; op: 'beginWith'; sql: string; params: readonly unknown[]; name: string | undefined }
  | { id: number; op: 'runIn'; tx: number; sql: string; params: readonly unknown[]; name: string | undefined }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'exec'; sql: string }
  | { id: number; op: 'listen'; channel: string }
  | { id: number; op: 'unlisten'; listenId: number }
  | { id: number; op: 'close' };

export type WorkerReply =
  | { id: number; ok: true; value?: unknown }
  | { id: number; ok: false; error: SerializedError }
  | { notify: number; payload: string }
  | { ready: string }
  | { failed: SerializedError };

/** An error as plain data (primitive own fields only: PGlite's DatabaseError carries `code`, `detail`, `constraint`...). */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), props: {} };
  const props: SerializedError['props'] = {};
  for (const [k, v] of Object.entries(err)) {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') props[k] = v;
  }
  return { name: err.name, message: err.message, stack: err.stack, props };
}

function reviveError(e: SerializedError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  Object.assign(err, e.props);
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}

/** SQLSTATE 57P01 (admin shutdown): `isDatabaseUnavailable` treats it as an outage. */
function threadGone(what: string): Error {
  return Object.assign(new Error(`the embedded database thread ${what}`), { code: '57P01' });
}

/** The compiled worker: next to this file in dist/, or dist/'s copy when running from the TypeScript sources (tests). */
function workerFile(): URL {
  if (import.meta.url.endsWith('.js')) return new URL('./pglite-worker.js', import.meta.url);
  return pathToFileURL(join(projectRoot, 'dist', 'src', 'store', 'pglite-worker.js'));
}

/** A request without its id (each member of the union on its own). */
type WithoutId<R> = R extends unknown ? Omit<R, 'id'> : never;
type Call = WithoutId<WorkerRequest>;

class ThreadEngine implements LiteEngineApi {
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private readonly listeners = new Map<number, (payload: string) => void>();
  private next = 0;
  private gone: Error | undefined;
  private closing = false;

  constructor(
    private readonly worker: Worker,
    readonly description: string,
  ) {
    worker.on('message', (m: WorkerReply) => this.receive(m));
    worker.on('error', (err) => this.fail(threadGone(`failed: ${err.message}`)));
    worker.on('exit', (code) => this.fail(threadGone(this.closing ? 'was closed' : `exited (code ${code})`)));
    worker.unref();
  }

  private receive(m: WorkerReply): void {
    if ('notify' in m) {
      this.listeners.get(m.notify)?.(m.payload);
      return;
    }
    if (!('id' in m)) return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.settled(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(reviveError(m.error));
  }

  /** The worker keeps the process alive only while a call waits for it (an idle pool of PGlite keeps nothing open). */
  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(err: Error): void {
    this.gone ??= err;
    for (const [id, p] of [...this.pending]) {
      this.settled(id);
      p.reject(err);
    }
  }

  private call<T>(request: Call, id = ++this.next): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<T>((resolve, reject) => {
      try {
        this.worker.postMessage({ ...request, id });
      } catch (err) {
        reject(err); // a parameter that cannot be copied (DataCloneError)
        return;
      }
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
  }

  run(sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult> {
    return this.call({ op: 'run', sql, params, name });
  }
  beginWith(sql: string, params: readonly unknown[], name: string | undefined): Promise<{ tx: number; result: LiteResult }> {
    return this.call({ op: 'beginWith', sql, params, name });
  }
  runIn(tx: number, sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult> {
    return this.call({ op: 'runIn', tx, sql, params, name });
  }
  end(tx: number, commit: boolean): Promise<void> {
    return this.call({ op: 'end', tx, commit });
  }
  exec(sql: string): Promise<void> {
    return this.call({ op: 'exec', sql });
  }
  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    const listenId = ++this.next; // the listen request's id: its notifications name it
    this.listeners.set(listenId, onNotify);
    try {
      await this.call({ op: 'listen', channel }, listenId);
    } catch (err) {
      this.listeners.delete(listenId);
      throw err;
    }
    return async () => {
      this.listeners.delete(listenId);
      if (!this.gone) await this.call({ op: 'unlisten', listenId });
    };
  }
  async close(): Promise<void> {
    if (this.gone) return;
    this.closing = true;
    try {
      await this.call({ op: 'close' });
    } finally {
      await this.worker.terminate();
    }
  }
}

/** Starts the worker thread and opens PGlite at `where` in it. */
export function openLiteThread(where: LiteLocation): Promise<LiteEngineApi> {
  const file = workerFile();
  return new Promise((resolve, reject) => {
    // No Node options for the worker: inherited ones can break it (--input-type of a `-e` script is refused with a file
    // entry) and the only ones it may be given are per-thread ones it does not need (V8 flags such as
    // --no-wasm-tier-up are process-wide: they apply to it anyway, and listing them here throws).
    const worker = new Worker(file, { workerData: where, execArgv: [] });
    const onError = (err: Error): void => {
      cleanup();
      const missing = (err as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND';
      reject(missing ? new Error(`the embedded database thread needs the compiled worker ${file.pathname} (run npm run build)`, { cause: err }) : err);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`the embedded database thread exited while opening the database (code ${code})`));
    };
    const onMessage = (m: WorkerReply): void => {
      if ('ready' in m) {
        cleanup();
        resolve(new ThreadEngine(worker, m.ready));
      } else if ('failed' in m) {
        cleanup();
        void worker.terminate();
        reject(reviveError(m.failed));
      }
    };
    const cleanup = (): void => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
    };
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.on('message', onMessage);
  });
}
