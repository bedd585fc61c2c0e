/**
 * Commands stored on the database itself (the embedded Event Platform's publish) are grouped: those that arrive while
 * one is being stored share the next statement (`insertCommand`, issue 12). Each caller keeps its own outcome: stored,
 * or a duplicate of its key (also within the group), and every column is stored as one row alone would be.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertCommand, type CommandInboxInsert } from '../src/store/command-inbox.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { migratedTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();

const row = (tenant: string, transportMessageId: string, payload?: unknown): CommandInboxInsert => ({
  id: randomUUID(),
  transport: 'local',
  channel: 'payment-commands',
  transportMessageId: `${tenant}-${transportMessageId}`,
  messageName: 'CapturePayment',
  tenantIdentifier: tenant,
  attributes: { transferName: 'CapturePayment', messageId: transportMessageId },
  payload,
  state: 'received',
  lastError: null,
});

function cases(db: () => Db): void {
  it('those stored in the same moment go as one statement, each with its own outcome and columns', async () => {
    const t = `grp-${randomUUID().slice(0, 8)}`;
    const rows = [
      row(t, 'b-1', { orderReference: 'DE--b1', amount: 1 }),
      row(t, 'b-2', { orderReference: 'DE--b2', amount: 2, note: 'ümlaut "quoted"' }),
      row(t, 'b-1', { orderReference: 'DE--b1', amount: 99 }), // the same key again within the group: not stored
      { ...row(t, 'b-3'), messageName: null, state: 'dead' as const, lastError: 'undecodable' }, // no payload: NULL
    ];
    const before = db().stats.statements;
    // the first goes alone; the three that arrive while it runs share the next statement
    const out = await Promise.all(rows.map((r) => insertCommand(db(), r)));
    expect(db().stats.statements - before).toBe(2);
    expect(out).toEqual([rows[0]!.id, rows[1]!.id, undefined, rows[3]!.id]);
    const stored = await db().query(
      `SELECT id, transport_message_id, message_name, payload, attributes, state, last_error FROM command_inbox WHERE tenant_identifier = $1 ORDER BY transport_message_id`,
      [t],
    );
    expect(stored.rows).toEqual(
      [rows[0]!, rows[1]!, rows[3]!].map((r) => ({
        id: r.id,
        transport_message_id: r.transportMessageId,
        message_name: r.messageName,
        payload: r.payload ?? null,
        attributes: r.attributes,
        state: r.state,
        last_error: r.lastError,
      })),
    );
    // a key already stored: a duplicate, alone or in a group
    const again = await Promise.all([row(t, 'b-9'), row(t, 'b-2'), row(t, 'b-3')].map((r) => insertCommand(db(), r)));
    expect(again.map((id) => id !== undefined)).toEqual([true, false, false]);
  });

  it('inside a transaction: its own statement, rolled back with it', async () => {
    const t = `grp-${randomUUID().slice(0, 8)}`;
    await expect(
      db().tx(async (tx) => {
        expect(await insertCommand(tx, row(t, 'tx-1', { orderReference: 'DE--tx' }))).toBeDefined();
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await db().query('SELECT 1 FROM command_inbox WHERE tenant_identifier = $1', [t])).rows).toEqual([]);
  });
}

describe('command inbox grouping (PGlite)', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDb({ kind: 'pglite-memory' });
    await migrate(db);
  });
  afterAll(async () => {
    await db?.close();
  });
  cases(() => db);
});

describe.skipIf(!pgOk)('command inbox grouping (PostgreSQL)', () => {
  cases(migratedTempDatabase());
});
