/**
 * Operator commands: `node dist/src/cli.js <command>` (`npm run cli -- <command>`). The payment and processing commands
 * run the same use cases as the operator console (src/app/console/), and write the same audit log (actor
 * `cli:<OS user>`). With the embedded database (no DATABASE_URL) stop the server first: PGlite opens its data
 * directory in one process only.
 *
 *   rotate-keys                         re-encrypt every stored tenant secret under the first key of ENCRYPTION_KEYS
 *   payments show <transactionId|orderReference>
 *   outbox list --dead                  dead outbox messages (and what each blocks)
 *   outbox requeue <id> --reason <why>
 *   webhooks replay <id> --reason <why>
 *   commands retry <id> --reason <why>
 *   console hash-password               reads a password on stdin, prints a CONSOLE_USERS hash
 *
 * Exit codes: 0 done, 1 failure, 2 usage or configuration error, 3 not found, 4 already handled or not allowed.
 */
import { realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ACTIONS, type ActionName } from './app/console/actions.js';
import { hashPassword } from './app/console/passwords.js';
import { paymentStory } from './app/console/queries.js';
import type { AppDeps } from './app/context.js';
import { ConfigError, loadConfig } from './config.js';
import { ConnectorRegistry } from './connectors/registry.js';
import { createLogger, loadKeyRing } from './runtime.js';
import { findPaymentsByReference, listOutbox } from './store/console-queries.js';
import { migrate, openDb } from './store/db.js';
import { SecretBox } from './store/secret-box.js';
import { TenantCache } from './store/tenant-cache.js';
import { rotateTenantSecrets } from './store/tenants.js';

const USAGE = `Usage: cli <command>

Commands:
  rotate-keys                                   re-encrypt every stored secret under the first key of ENCRYPTION_KEYS
  payments show <transactionId|orderReference>  one payment's amounts, timeline, PSP calls, webhooks, messages, audit
  outbox list --dead                            dead outbox messages and what each one blocks
  outbox requeue <id> --reason <why>            put a dead outbox message back in line (same id, payload, timestamp)
  webhooks replay <id> --reason <why>           process a dead or expired webhook again
  commands retry <id> --reason <why>            make a retrying command due now
  console hash-password                         read a password on stdin, print its hash for CONSOLE_USERS`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The whole of stdin (console hash-password). */
  readStdin?: () => Promise<string>;
}

const defaultIo: CliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

/** `--reason <why>` / `--reason=<why>`, and the positional arguments. */
function parseArgs(args: string[]): { positional: string[]; flags: Record<string, string | true> } {
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
      else if (a === '--dead') flags.dead = true;
      else if (i + 1 < args.length) flags[a.slice(2)] = args[++i]!;
      else flags[a.slice(2)] = true;
    } else positional.push(a);
  }
  return { positional, flags };
}

type Command = { kind: 'rotate-keys' } | { kind: 'show'; ref: string } | { kind: 'dead' } | { kind: 'action'; name: ActionName; id: string; reason: unknown } | { kind: 'hash' };

function parseCommand(argv: string[]): Command | string {
  const { positional, flags } = parseArgs(argv);
  const [group, verb, arg] = positional;
  const action = (name: ActionName): Command | string => (arg && positional.length === 3 ? { kind: 'action', name, id: arg, reason: flags.reason } : `"${group} ${verb}" needs one id`);
  if (group === 'rotate-keys' && positional.length === 1) return { kind: 'rotate-keys' };
  if (group === 'payments' && verb === 'show') return arg && positional.length === 3 ? { kind: 'show', ref: arg } : '"payments show" needs a transaction id or an order reference';
  if (group === 'outbox' && verb === 'list') return flags.dead === true ? { kind: 'dead' } : '"outbox list" needs --dead';
  if (group === 'outbox' && verb === 'requeue') return action('outbox.requeue');
  if (group === 'webhooks' && verb === 'replay') return action('webhook.replay');
  if (group === 'commands' && verb === 'retry') return action('command.retry');
  if (group === 'console' && verb === 'hash-password' && positional.length === 2) return { kind: 'hash' };
  return `Unknown command "${positional.join(' ')}".`;
}

/** Runs one command; returns the process exit code. `opts.deps`: run against an already open app (tests). */
export async function runCli(argv: string[], env: Record<string, string | undefined> = process.env, io: CliIo = defaultIo, opts: { deps?: AppDeps } = {}): Promise<number> {
  if (argv[0] === undefined || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    io.out(USAGE);
    return argv[0] === undefined ? 2 : 0;
  }
  const cmd = parseCommand(argv);
  if (typeof cmd === 'string') {
    io.err(cmd);
    io.out(USAGE);
    return 2;
  }
  if (cmd.kind === 'hash') return hashCommand(io);
  if (cmd.kind === 'action' && (typeof cmd.reason !== 'string' || cmd.reason.trim() === '')) {
    io.err('--reason <why> is required: it is written to the audit log.');
    return 2;
  }
  if (opts.deps) return run(cmd, opts.deps, io);
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`Configuration error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const connectors = new ConnectorRegistry(config, { config, listenUrl: () => config.appBaseUrl, log });
  const db = await openDb(config.database);
  try {
    await migrate(db, connectors.migrationDirs());
    const deps: AppDeps = { config, db, log, secrets: new SecretBox(loadKeyRing(config, log)), connectors, tenants: new TenantCache(db) };
    return await run(cmd, deps, io);
  } catch (err) {
    io.err(`${argv.slice(0, 2).join(' ')} failed: ${firstLine(err)}`);
    return 1;
  } finally {
    await db.close();
  }
}

async function hashCommand(io: CliIo): Promise<number> {
  const input = io.readStdin ? await io.readStdin() : '';
  const password = input.replace(/\r?\n$/, '');
  if (password.length < 12) {
    io.err('Give the password on stdin (at least 12 characters), e.g. `read -rs P && printf %s "$P" | npm run cli -- console hash-password`.');
    return 2;
  }
  io.out(await hashPassword(password));
  return 0;
}

async function run(cmd: Exclude<Command, { kind: 'hash' }>, deps: AppDeps, io: CliIo): Promise<number> {
  switch (cmd.kind) {
    case 'rotate-keys': {
      const report = await rotateTenantSecrets(deps.db, deps.secrets);
      io.out(
        `rotate-keys: ${report.tenants} tenant(s), ${report.reencrypted} secret(s) re-encrypted under key "${deps.secrets.currentKeyId}", ${report.alreadyCurrent} already under it.`,
      );
      return 0;
    }
    case 'show':
      return showPayment(deps, io, cmd.ref);
    case 'dead': {
      const rows = await listOutbox(deps.db, { states: ['dead'], limit: 1000 });
      if (rows.length === 0) io.out('No dead outbox messages.');
      for (const o of rows) {
        io.out(`${o.id}  ${o.channel}  ${o.orderingKey}  ${o.messageName}  attempts=${o.attempts}  blocks=${o.blocking}  last error: ${o.lastError ?? ''}`);
      }
      return 0;
    }
    case 'action': {
      const actor = { id: `cli:${safeUser()}` };
      const r = await ACTIONS[cmd.name](deps, actor, cmd.id, cmd.reason);
      switch (r.kind) {
        case 'done':
          io.out(`${cmd.name} ${cmd.id}: done, now ${r.state}${r.paymentId ? ` (payment ${r.paymentId})` : ''}.`);
          return 0;
        case 'not-found':
          io.err(`${cmd.name} ${cmd.id}: not found.`);
          return 3;
        case 'already-handled':
          io.err(`${cmd.name} ${cmd.id}: already handled (now ${r.state}); nothing changed.`);
          return 4;
        case 'not-allowed':
          io.err(`${cmd.name} ${cmd.id}: ${r.message}`);
          return 4;
        case 'bad-reason':
          io.err('--reason <why> is required (1 to 1000 characters).');
          return 2;
      }
    }
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function showPayment(deps: AppDeps, io: CliIo, ref: string): Promise<number> {
  const found = await findPaymentsByReference(deps.db, ref);
  if (found.length === 0) {
    io.err(`No payment with transaction id or order reference "${ref}".`);
    return 3;
  }
  if (found.length > 1) io.out(`${found.length} payments match "${ref}" (one per tenant):`);
  for (const f of found) {
    const s = (await paymentStory(deps, f.id))!;
    const p = s.payment;
    io.out(`Payment ${p.id}`);
    io.out(`  tenant ${p.tenantIdentifier}  order ${p.orderReference ?? '(pre-order)'}  transaction ${p.transactionId}  provider ${s.provider ?? '(not enabled)'}`);
    io.out(`  status ${p.status}  amount ${p.amount} ${p.currency}  authorized ${p.authorizedAmount}  captured ${p.capturedAmount}  refunded ${p.refundedAmount}  released ${p.releasedAmount}`);
    io.out('  timeline:');
    const events = [
      ...s.history.map((h) => ({ at: h.createdAt, line: `${h.status} (#${h.seq}, ${h.trigger}${h.triggerRef ? ` ${h.triggerRef}` : ''})` })),
      ...s.audit.map((a) => ({ at: a.at, line: `${a.actor} ${a.action} ${a.targetId} (was ${a.fromState}): ${a.reason}` })),
    ].sort((a, b) => a.at.getTime() - b.at.getTime());
    for (const e of events) io.out(`    ${e.at.toISOString()}  ${e.line}`);
    for (const o of s.operations) io.out(`  ${o.kind} ${o.id}  ${o.amount}  ${o.status}${o.pspReference ? `  psp ${o.pspReference}` : ''}${o.failureReason ? `  ${o.failureReason}` : ''}`);
    for (const r of s.refunds) io.out(`  refund ${r.id}  ${r.amount}  ${r.status}${r.pspRefundId ? `  psp ${r.pspRefundId}` : ''}${r.failureReason ? `  ${r.failureReason}` : ''}`);
    for (const w of s.webhooks) io.out(`  webhook ${w.id}  ${w.eventType}  ${w.state}${w.reason ? `  ${w.reason}` : ''}`);
    for (const m of s.messages) io.out(`  message ${m.id}  ${m.messageName}  ${m.discarded ? 'discarded' : m.state}`);
    for (const c of s.commands) io.out(`  command ${c.id}  ${c.messageName ?? '(undecodable)'}  ${c.state}`);
  }
  return 0;
}

function invokedDirectly(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`cli failed: ${firstLine(err)}\n`);
      process.exit(1);
    },
  );
}
