/**
 * `npm start` as a process: defaults, one-line configuration errors, graceful shutdown.
 * Builds the project once into .tmp/startup-build (not dist/, so a developer's `npm start` is not disturbed).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';

const BUILD_DIR = join(projectRoot, '.tmp', 'startup-build');
const MAIN = join(BUILD_DIR, 'src', 'main.js');
const KEY = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  waitFor: (re: RegExp) => Promise<RegExpExecArray>;
}

function run(env: Record<string, string>, cwd: string): Proc {
  const child = spawn(process.execPath, [MAIN], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const waitFor = (re: RegExp): Promise<RegExpExecArray> =>
    new Promise((res, rej) => {
      const check = (): void => {
        const m = re.exec(out);
        if (m) {
          waiters.splice(waiters.indexOf(check), 1);
          res(m);
        }
      };
      waiters.push(check);
      check();
      void exited.then((code) => rej(new Error(`process exited (${code}) before ${re}: ${out}\n${err}`)));
    });
  return { child, stdout: () => out, stderr: () => err, exited, waitFor };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

const tmpDirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'oap-startup-'));
  tmpDirs.push(d);
  return d;
};

beforeAll(() => {
  // tsc exits non-zero when any file has a type error but still emits; what matters is the entry point.
  const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  if (!existsSync(MAIN)) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
}, 120_000);

afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('npm start with no variables', () => {
  it('serves 127.0.0.1:3000 with PGlite in ./data, the sandbox connector and the local transport, and stops on SIGTERM with 0', async () => {
    const cwd = tmp();
    // Port 3000 is the default under test; if something else holds it, fall back to PORT=0 (printed) rather than fail.
    const free = await portFree(3000);
    if (!free) process.stdout.write('[note] port 3000 is busy: starting with PORT=0 instead of no variables\n');
    const p = run(free ? {} : { PORT: '0' }, cwd);
    try {
      const [, url] = await p.waitFor(/listening on (http:\/\/\S+)/);
      if (free) expect(url).toBe('http://127.0.0.1:3000');
      else expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      await p.waitFor(/auth:\s+none/);
      const out = p.stdout();
      expect(out).toContain(`database:  PGlite ${resolve(cwd, 'data', 'pgdata')}`);
      expect(out).toMatch(/connector: sandbox \(sandbox PSP in-process at \/sandbox\)/);
      expect(out).toMatch(/transport: local/);
      expect(existsSync(join(cwd, 'data', 'encryption.key'))).toBe(true);
      expect(existsSync(join(cwd, 'data', 'pgdata', 'PG_VERSION'))).toBe(true);
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(200);
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toBe('');
  }, 60_000);
});

describe('a bad variable stops start-up with one line naming it', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['PORT', { PORT: 'abc' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
    ['ENCRYPTION_KEYS', { ENCRYPTION_KEYS: 'k:short' }],
    ['AUTH_MODE', { AUTH_MODE: 'none', HOST: '0.0.0.0' }],
    ['MESSAGE_TRANSPORT', { MESSAGE_TRANSPORT: 'kafka' }],
    ['APP_BASE_URL', { APP_BASE_URL: 'notaurl' }],
    ['OUTBOX_MAX_RETRY_HOURS', { OUTBOX_MAX_RETRY_HOURS: '1' }],
    ['AMQP_URL', { MESSAGE_TRANSPORT: 'rabbitmq' }],
  ];
  it.each(cases)('%s', async (variable, env) => {
    const cwd = tmp();
    const p = run({ PORT: '0', ...env }, cwd);
    const code = await p.exited;
    expect(code).not.toBe(0);
    const lines = p.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(variable);
    expect(lines[0]).toMatch(/^Configuration error: /);
    // nothing was started or created
    expect(p.stdout()).not.toContain('listening');
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('an unusable port (already taken) also stops with one line', async () => {
    const blocker = net.createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const p = run({ PORT: String(port), DATABASE_URL: 'memory://', ENCRYPTION_KEYS: KEY }, tmp());
      expect(await p.exited).not.toBe(0);
      const lines = p.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^Start-up failed: .*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  }, 30_000);
});

describe('graceful shutdown', () => {
  it('SIGTERM while a request is in flight: the request completes, then the process exits 0', async () => {
    const p = run({ PORT: '0', DATABASE_URL: 'memory://', ENCRYPTION_KEYS: KEY, LOG_LEVEL: 'info' }, tmp());
    try {
      const [, url] = await p.waitFor(/listening on (http:\/\/\S+)/);
      const { hostname, port } = new URL(url!);
      // A slow client: headers and half the body now, the rest after SIGTERM.
      const body = JSON.stringify({ data: { type: 'configuration', attributes: { configuration: '{}' } } });
      const sock = net.connect({ host: hostname, port: Number(port) });
      await new Promise<void>((res) => sock.once('connect', () => res()));
      let response = '';
      sock.on('data', (d: Buffer) => (response += d.toString()));
      const closed = new Promise<void>((res) => sock.once('close', () => res()));
      const half = Math.floor(body.length / 2);
      sock.write(
        `POST /private/configure HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nX-Tenant-Identifier: t-shutdown\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n` +
          body.slice(0, half),
      );
      // the server has routed the request (onRequest ran) once its log line appears
      await p.waitFor(/"url":"\/private\/configure".*"msg":"incoming request"/);
      p.child.kill('SIGTERM');
      await p.waitFor(/"msg":"shutting down"/);
      let exitedEarly = false;
      void p.exited.then(() => (exitedEarly = response === ''));
      sock.write(body.slice(half));
      await closed;
      expect(response).toMatch(/^HTTP\/1\.1 (\d{3})/);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)![1]);
      expect(status).not.toBe(503);
      expect(status).toBeLessThan(500);
      expect(await p.exited).toBe(0);
      expect(exitedEarly).toBe(false);
      // after shutdown nothing listens any more
      await expect(fetch(`${url}/health`)).rejects.toThrow();
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  }, 60_000);
});
