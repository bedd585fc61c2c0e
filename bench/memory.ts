/**
 * Resident memory of `npm start` on the embedded default (PGlite in a data dir), as reported in README "Memory".
 * Run: `npm run build && node dist/bench/memory.js`. Spawns dist/src/main.js three times:
 * first start on an empty DATA_DIR, after a batch of requests, and a restart on the existing DATA_DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const mainJs = join(here, '..', 'src', 'main.js');

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

async function start(dataDir: string, extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [mainJs], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { child, url };
}

async function stop(child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1500));

async function load(url: string, n: number): Promise<void> {
  const tenant = 'memory-tenant';
  const paths = ['/health', '/ready', '/metrics', '/app/manifest', '/openapi.json'];
  for (let i = 0; i < n; i++) {
    await (await fetch(url + paths[i % paths.length])).arrayBuffer();
    const r = await fetch(`${url}/private/configure`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tenant-identifier': `${tenant}-${i % 20}` },
      body: JSON.stringify({ data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: 'sk_sandbox_memory0001', webhookSecret: 'whsec_0123456789abcdef', isLive: false }) } } }),
    });
    await r.arrayBuffer();
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'oap-memory-'));
  try {
    const first = await start(dataDir);
    await settle();
    const afterFirstStart = rssMiB(first.child.pid!);
    await load(first.url, 500);
    await settle();
    const afterRequests = rssMiB(first.child.pid!);
    await stop(first.child);

    const second = await start(dataDir);
    await settle();
    const afterRestart = rssMiB(second.child.pid!);
    await load(second.url, 500);
    await settle();
    const afterRestartRequests = rssMiB(second.child.pid!);
    await stop(second.child);

    const mem = await start('', { DATABASE_URL: 'memory://' });
    await settle();
    const inMemory = rssMiB(mem.child.pid!);
    await stop(mem.child);

    process.stdout.write(
      [
        `node ${process.version}, RSS in MiB`,
        `first start (empty DATA_DIR, initdb):      ${afterFirstStart}`,
        `  after 1000 requests:                     ${afterRequests}`,
        `restart on the existing DATA_DIR:          ${afterRestart}`,
        `  after 1000 requests:                     ${afterRestartRequests}`,
        `DATABASE_URL=memory:// start:              ${inMemory}`,
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`memory measurement failed: ${(err as Error).message}\n`);
  process.exit(1);
});
