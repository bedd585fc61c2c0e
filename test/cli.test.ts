/**
 * The operator CLI (issue 11): `payments show`, `outbox list --dead`, `outbox requeue`, `webhooks replay`,
 * `commands retry`, `console hash-password` — the console's use cases, the same audit log, exit codes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../src/app/console/passwords.js';
import { runCli, type CliIo } from '../src/cli.js';
import { startTestApp, TEST_KEYS, type TestApp } from './helpers/app.js';
import { until } from './helpers/commands.js';
import { paidPayment } from './helpers/console.js';
import type { Initialized } from './helpers/hosted-flow.js';

let app: TestApp;
let pay: Initialized;
const T = 'cli-shop';

function capture(stdin = ''): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l), readStdin: async () => stdin }, out, err };
}
const cli = async (argv: string[]) => {
  const c = capture();
  const code = await runCli(argv, {}, c.io, { deps: app.deps });
  return { code, out: c.out.join('\n'), err: c.err.join('\n') };
};

beforeAll(async () => {
  app = await startTestApp();
  pay = await paidPayment(app, T);
  await until(
    async () => (await app.deps.db.query<{ state: string }>(`SELECT state FROM webhook_inbox WHERE tenant_identifier = $1`, [T])).rows,
    (r) => r.some((w) => w.state === 'processed'),
  );
}, 60_000);
afterAll(async () => {
  await app?.close();
});

describe('cli', () => {
  it('payments show by transaction id and by order reference; unknown → exit 3', async () => {
    for (const ref of [pay.transactionId, pay.orderReference]) {
      const r = await cli(['payments', 'show', ref]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Payment ${pay.paymentId}`);
      expect(r.out).toContain('status authorized');
      expect(r.out).toMatch(/timeline:\n.*new/);
      expect(r.out).toMatch(/message .* PaymentAuthorized/);
    }
    const none = await cli(['payments', 'show', 'nope']);
    expect(none.code).toBe(3);
    expect((await cli(['payments', 'show'])).code).toBe(2);
  });

  it('outbox list --dead, outbox requeue with reason; again → already handled (exit 4)', async () => {
    const id = (await app.deps.db.query<{ id: string }>('SELECT id FROM outbox WHERE ordering_key = $1 ORDER BY seq DESC LIMIT 1', [`${T}/payment/${pay.paymentId}`])).rows[0]!.id;
    await app.deps.db.query(`UPDATE outbox SET state = 'dead', last_error = 'broker down' WHERE id = $1`, [id]);
    const list = await cli(['outbox', 'list', '--dead']);
    expect(list.code).toBe(0);
    expect(list.out).toContain(id);
    expect(list.out).toContain('broker down');
    expect((await cli(['outbox', 'list'])).code).toBe(2);
    const noReason = await cli(['outbox', 'requeue', id]);
    expect(noReason.code).toBe(2);
    expect(noReason.err).toContain('--reason');
    expect((await cli(['outbox', 'requeue', 'no-such', '--reason', 'x'])).code).toBe(3);
    const ok = await cli(['outbox', 'requeue', id, '--reason', 'broker is back']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain('now pending');
    const again = await cli(['outbox', 'requeue', id, '--reason=broker is back']);
    expect(again.code).toBe(4);
    const show = await cli(['payments', 'show', pay.orderReference]);
    expect(show.out).toMatch(/cli:\S+ outbox\.requeue .* \(was dead\): broker is back/);
  });

  it('webhooks replay and commands retry', async () => {
    const wh = (await app.deps.db.query<{ id: string }>(`SELECT id FROM webhook_inbox WHERE tenant_identifier = $1 AND state = 'processed' LIMIT 1`, [T])).rows[0]!.id;
    await app.deps.db.query(`UPDATE webhook_inbox SET state = 'expired' WHERE id = $1`, [wh]);
    const r = await cli(['webhooks', 'replay', wh, '--reason', 'order is linked now']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('now processed');
    expect((await cli(['webhooks', 'replay', wh, '--reason', 'x'])).code).toBe(4);
    await app.deps.db.query(
      `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, payload, state)
       VALUES ('cli-dead-1', 'local', 'payment-commands', 'cli-dead-1', 'CapturePayment', $1, '{}', 'dead')`,
      [T],
    );
    const dead = await cli(['commands', 'retry', 'cli-dead-1', '--reason', 'x']);
    expect(dead.code).toBe(4);
    expect(dead.err).toContain('cannot be retried');
    expect((await cli(['commands', 'retry', 'nope', '--reason', 'x'])).code).toBe(3);
  });

  it('console hash-password prints a hash CONSOLE_USERS accepts; a short password exits 2', async () => {
    const c = capture('a long enough password\n');
    expect(await runCli(['console', 'hash-password'], {}, c.io)).toBe(0);
    expect(c.out[0]).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword('a long enough password', c.out[0]!)).toBe(true);
    expect(await verifyPassword('another password', c.out[0]!)).toBe(false);
    const short = capture('short');
    expect(await runCli(['console', 'hash-password'], {}, short.io)).toBe(2);
  });

  it('runs against its own database from the environment; unknown commands exit 2', async () => {
    const c = capture();
    expect(await runCli(['outbox', 'list', '--dead'], { DATABASE_URL: 'memory://', ENCRYPTION_KEYS: TEST_KEYS, LOG_LEVEL: 'silent' }, c.io)).toBe(0);
    expect(c.out).toEqual(['No dead outbox messages.']);
    const u = capture();
    expect(await runCli(['payments', 'delete', 'x'], {}, u.io)).toBe(2);
    expect(u.err[0]).toBe('Unknown command "payments delete x".');
  });
});
