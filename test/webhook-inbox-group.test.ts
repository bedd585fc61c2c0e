/**
 * Group commit of webhook inbox inserts on PostgreSQL (`insertInboxEvent`, `src/store/coalesce.ts`): events of one
 * tenant that arrive while an earlier one is being stored share one statement. Seen from outside nothing may differ
 * from one statement per event: each event stored once, a repeated event id answered as a duplicate (false), the rows
 * as a lone insert writes them. A statement held by a row lock (another session inserting the same event id) does not
 * hold the events behind it: they are stored alone, at once, and the held one is a duplicate once the other commits.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { insertInboxEvent, type NewInboxEvent } from '../src/store/webhook-inbox.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();

const event = (tenant: string, eventId: string, over: Partial<NewInboxEvent> = {}): NewInboxEvent => ({
  id: randomUUID(),
  tenantIdentifier: tenant,
  connector: 'sandbox',
  eventId,
  eventType: 'payment.authorized',
  mode: 'test',
  pspObjectId: `pay_${eventId}`,
  payload: { id: eventId, quote: 'a "quoted" \\ value, {braces}, ünïcode', n: [1, 2] },
  state: 'received',
  reason: null,
  nextAttemptAt: new Date(Date.now() + 60_000),
  ...over,
});

describe.skipIf(!pgOk)('webhook inbox group commit (PostgreSQL)', () => {
  let db: Db;
  let url: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const tmp = await createTempDatabase();
    url = tmp.url;
    drop = tmp.drop;
    db = await openDb({ kind: 'postgres', url });
    await migrate(db);
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  it('a burst shares statements; each event stored once, repeats of one event id are duplicates, rows as a lone insert writes them', async () => {
    const tenant = `t-${randomBytes(3).toString('hex')}`;
    // Submitted in one tick: the first runs alone, the rest queue behind it and go together. A statement slower than
    // the stall bound releases its queue one by one, so a slow machine may need another burst to show a shared one.
    let grouped = false;
    for (let burst = 0; burst < 3 && !grouped; burst++) {
      const ids = Array.from({ length: 24 }, (_, i) => `evt_${burst}_${i}`);
      const repeated = `evt_${burst}_repeated`;
      const events = [...ids.map((id) => event(tenant, id)), ...Array.from({ length: 5 }, () => event(tenant, repeated)), event(tenant, `evt_${burst}_ignored`, { state: 'ignored', reason: 'another tenant' })];
      const before = db.stats.statements;
      const results = await Promise.all(events.map((e) => insertInboxEvent(db, e)));
      const statements = db.stats.statements - before;
      grouped = statements < events.length;

      expect(results.slice(0, 24)).toEqual(ids.map(() => true));
      expect(results.slice(24, 29).filter(Boolean)).toHaveLength(1); // one of the five repeats stored, four duplicates
      expect(results[29]).toBe(true);
      const rows = (
        await db.query<{ id: string; event_id: string; state: string; reason: string | null; payload: unknown; processed: boolean; next_attempt_at: Date }>(
          `SELECT id, event_id, state, reason, payload, processed_at IS NOT NULL AS processed, next_attempt_at FROM webhook_inbox WHERE tenant_identifier = $1 AND event_id LIKE $2 ORDER BY received_at, id`,
          [tenant, `evt_${burst}_%`],
        )
      ).rows;
      expect(rows).toHaveLength(26);
      const stored = new Map(events.filter((_, i) => results[i]).map((e) => [e.id, e]));
      for (const row of rows) {
        const e = stored.get(row.id)!;
        expect(e).toBeDefined();
        expect(row.event_id).toBe(e.eventId);
        expect(row.payload).toEqual(e.payload);
        expect(row.state).toBe(e.state);
        expect(row.reason).toBe(e.reason);
        expect(row.processed).toBe(e.state === 'ignored');
        expect(new Date(row.next_attempt_at).getTime()).toBe(e.nextAttemptAt.getTime());
      }
      // grouped (the first alone, the rest in one statement): received in the order they were submitted
      if (statements === 2) expect(rows.map((r) => r.event_id).filter((id) => ids.includes(id))).toEqual(ids);
    }
    expect(grouped).toBe(true);
  });

  it('a statement waiting on a row lock does not hold the events behind it', async () => {
    const tenant = `t-${randomBytes(3).toString('hex')}`;
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // Another session stores evt_held and has not committed: our insert of the same id waits for it.
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state, next_attempt_at) VALUES ($1, $2, 'sandbox', 'evt_held', 'payment.authorized', 'test', 'pay_held', '{}', 'received', now())`,
        [randomUUID(), tenant],
      );
      let heldDone = false;
      const held = insertInboxEvent(db, event(tenant, 'evt_held')).finally(() => (heldDone = true));
      const behind = [insertInboxEvent(db, event(tenant, 'evt_b1')), insertInboxEvent(db, event(tenant, 'evt_b2'))];
      expect(await Promise.all(behind)).toEqual([true, true]);
      // and those that arrive while it still waits
      expect(await insertInboxEvent(db, event(tenant, 'evt_b3'))).toBe(true);
      expect(heldDone).toBe(false);
      await other.query('COMMIT');
      expect(await held).toBe(false); // the other session's row: a duplicate
      expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_inbox WHERE tenant_identifier = $1`, [tenant])).rows[0]!.n).toBe(4);
    } finally {
      await other.end();
    }
  });
});
