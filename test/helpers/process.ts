/**
 * The app as a real process (`node <build>/src/main.js`), for tests that signal or kill it: one build per source
 * state shared by every test file of a run (a lock directory serialises the build; a stamp of the sources' names,
 * sizes and modification times says whether a build is current), free ports, and a spawned app with its output.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';

export const PROCESS_BUILD_DIR = join(projectRoot, '.tmp', 'process-build');
export const PROCESS_MAIN = join(PROCESS_BUILD_DIR, 'src', 'main.js');

function sourceStamp(): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p);
        h.update(`${p}:${st.size}:${st.mtimeMs}\n`);
      }
    }
  };
  walk(join(projectRoot, 'src'));
  return h.digest('hex');
}

/** Builds the project like `npm run build` into PROCESS_BUILD_DIR unless the build there is of the current sources. */
export async function ensureBuild(): Promise<string> {
  const stampFile = join(PROCESS_BUILD_DIR, '.stamp');
  const lock = `${PROCESS_BUILD_DIR}.lock`;
  const stamp = sourceStamp();
  mkdirSync(join(projectRoot, '.tmp'), { recursive: true });
  const deadline = Date.now() + 240_000;
  for (;;) {
    if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp && existsSync(PROCESS_MAIN)) return PROCESS_MAIN;
    try {
      mkdirSync(lock);
    } catch {
      // another test file is building; a lock older than 4 minutes is stale
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 240_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error('timed out waiting for the build of another test file');
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    try {
      if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp && existsSync(PROCESS_MAIN)) return PROCESS_MAIN;
      // tsc exits non-zero on a type error but still emits; the type check is `npm run typecheck`'s job
      const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', PROCESS_BUILD_DIR], { cwd: projectRoot, encoding: 'utf8' });
      if (!existsSync(PROCESS_MAIN)) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
      writeFileSync(stampFile, stamp);
      return PROCESS_MAIN;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => res(p));
    });
  });
}

export interface AppProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
  alive: () => boolean;
}

/** Starts `node main.js` on `port` with `env` (plus PATH); resolves once it prints "listening on". */
export async function startAppProcess(port: number, env: Record<string, string>, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<AppProcess> {
  const child = spawn(process.execPath, [PROCESS_MAIN], {
    cwd: opts.cwd ?? projectRoot,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', APP_BASE_URL: `http://127.0.0.1:${port}`, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const end = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (/listening on/.test(out)) break;
    if (!alive() || Date.now() > end) {
      if (alive()) child.kill('SIGKILL');
      throw new Error(`app did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url: `http://127.0.0.1:${port}`, exited, output: () => out, alive };
}
