/**
 * Worker thread entry of the embedded database (`pglite-thread.ts`): opens PGlite where `workerData` says and runs
 * the requests of the server's thread on a `LiteEngine`, each answered by its id.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openLiteEngine, type LiteEngine, type LiteLocation } from './pglite.js';
import { serializeError, type WorkerReply, type WorkerRequest } from './pglite-thread.js';

const port = parentPort!;
const reply = (m: WorkerReply): void => port.postMessage(m);

let engine: LiteEngine | undefined;
try {
  engine = await openLiteEngine(workerData as LiteLocation);
} catch (err) {
  reply({ failed: serializeError(err) });
}

if (engine) {
  const db = engine;
  const unlisteners = new Map<number, () => Promise<void>>();

  const handle = async (m: WorkerRequest): Promise<void> => {
    try {
      let value: unknown;
      switch (m.op) {
        case 'run':
          value = await db.run(m.sql, m.params, m.name);
          break;
        case 'beginWith':
          value = await db.beginWith(m.sql, m.params, m.name);
          break;
        case 'runIn':
          value = await db.runIn(m.tx, m.sql, m.params, m.name);
          break;
        case 'end':
          await db.end(m.tx, m.commit);
          break;
        case 'exec':
          await db.exec(m.sql);
          break;
        case 'listen':
          unlisteners.set(m.id, await db.listen(m.channel, (payload) => reply({ notify: m.id, payload })));
          break;
        case 'unlisten': {
          const unlisten = unlisteners.get(m.listenId);
          unlisteners.delete(m.listenId);
          await unlisten?.();
          break;
        }
        case 'close':
          await db.close();
          reply({ id: m.id, ok: true });
          port.close();
          return;
      }
      reply({ id: m.id, ok: true, value });
    } catch (err) {
      reply({ id: m.id, ok: false, error: serializeError(err) });
    }
  };

  port.on('message', (m: WorkerRequest) => void handle(m));
  reply({ ready: db.description });
}
