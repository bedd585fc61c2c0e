/**
 * Distribution: the Dockerfile passes its linter and runs as the documented commands, compose.yaml matches the
 * Compose Specification schema, and `npm start` runs the built output without compiling.
 *
 * No container runtime here reaches an image registry, so the Dockerfile's build stage RUN step is executed as the
 * same command in a copy of the build context (the files .dockerignore lets through), its runtime stage is assembled
 * from its COPY --from=build lines, and its CMD and HEALTHCHECK run there with its ENV, as the unprivileged image would.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { composeProblems } from '../scripts/validate-compose.js';
import { projectRoot } from '../src/paths.js';

interface Instruction {
  stage: number;
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions (continuations joined, comments dropped), with their stage index. */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(projectRoot, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    const [keyword, ...rest] = l.split(/\s+/);
    if (keyword!.toUpperCase() === 'FROM') stage++;
    out.push({ stage, keyword: keyword!.toUpperCase(), args: rest.join(' ') });
  }
  return out;
}

const execForm = (args: string): string[] => JSON.parse(args) as string[];

const tmpDirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('Dockerfile', () => {
  const ins = dockerfile();

  it('passes the linter (dockerfile-utils)', () => {
    const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules', 'dockerfile-utils', 'bin', 'dockerfile-utils'), 'lint', join(projectRoot, 'Dockerfile')], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is multi-stage, runs as a non-root user, checks /ready and starts with the documented command', () => {
    expect(ins.filter((i) => i.keyword === 'FROM')).toHaveLength(2);
    const runtime = ins.filter((i) => i.stage === 1);
    expect(runtime.find((i) => i.keyword === 'USER')?.args).toBe('node');
    expect(runtime.find((i) => i.keyword === 'HEALTHCHECK')?.args).toContain('/ready');
    expect(execForm(runtime.find((i) => i.keyword === 'CMD')!.args)).toEqual(['node', 'dist/src/main.js']);
    expect(ins.find((i) => i.stage === 0 && i.keyword === 'RUN')?.args).toBe('npm ci && npm run build && npm prune --omit=dev');
    const readme = readFileSync(join(projectRoot, 'docs', 'production.md'), 'utf8');
    expect(readme).toContain('npm ci && npm run build && npm prune --omit=dev');
    expect(readme).toContain('node dist/src/main.js');
  });
});

describe('compose.yaml', () => {
  it('matches the Compose Specification schema, with the app, PostgreSQL and RabbitMQ', () => {
    const text = readFileSync(join(projectRoot, 'compose.yaml'), 'utf8');
    expect(composeProblems(text)).toEqual([]);
    for (const s of ['app', 'postgres', 'rabbitmq']) expect(text).toMatch(new RegExp(`^  ${s}:$`, 'm'));
  });

  it('a wrong key or type is reported (the check can fail)', () => {
    expect(composeProblems('services:\n  app:\n    imgae: x\n    ports: 5\n')).toEqual(['/services/app: must NOT have additional properties ("imgae")', '/services/app/ports: must be array']);
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Copies the build context: the project minus what .dockerignore excludes (top-level names and simple globs). */
function copyContext(to: string): void {
  const ignore = readFileSync(join(projectRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
  for (const name of readdirSync(projectRoot)) {
    if (ignore.some((re) => re.test(name))) continue;
    cpSync(join(projectRoot, name), join(to, name), { recursive: true });
  }
}

describe('the Dockerfile build and start steps, run as the same commands', () => {
  it(
    'build stage → runtime stage (no dev dependency, no TypeScript, no sources) → CMD answers /ready and the HEALTHCHECK passes',
    async () => {
      const ins = dockerfile();
      const build = mkdtempSync(join(tmpdir(), 'oap-dist-build-'));
      const runtime = mkdtempSync(join(tmpdir(), 'oap-dist-runtime-'));
      const data = mkdtempSync(join(tmpdir(), 'oap-dist-data-'));
      tmpDirs.push(build, runtime, data);
      copyContext(build);
      expect(existsSync(join(build, 'node_modules'))).toBe(false);

      // build stage: its RUN step(s), same commands (npm may use its local cache)
      for (const r of ins.filter((i) => i.stage === 0 && i.keyword === 'RUN')) {
        execFileSync('bash', ['-c', r.args], { cwd: build, stdio: 'pipe', env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }, timeout: 600_000 });
      }
      expect(existsSync(join(build, 'dist', 'src', 'main.js'))).toBe(true);
      expect(existsSync(join(build, 'node_modules', 'typescript'))).toBe(false); // pruned
      expect(existsSync(join(build, 'node_modules', 'vitest'))).toBe(false);

      // runtime stage: exactly what it copies from the build stage
      for (const c of ins.filter((i) => i.stage === 1 && i.keyword === 'COPY')) {
        const parts = c.args.split(/\s+/);
        expect(parts[0]).toBe('--from=build');
        const dest = parts.at(-1)!;
        for (const src of parts.slice(1, -1)) {
          const name = src.replace(/^\/app\//, '');
          cpSync(join(build, name), dest === './' ? join(runtime, name) : join(runtime, dest), { recursive: true });
        }
      }
      expect(existsSync(join(runtime, 'src'))).toBe(false);

      const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
      for (const e of ins.filter((i) => i.stage === 1 && i.keyword === 'ENV')) {
        for (const m of e.args.matchAll(/([A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
      }
      const port = await freePort();
      Object.assign(env, { PORT: String(port), DATA_DIR: data, AUTH_JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'warn' });
      const cmd = execForm(ins.find((i) => i.stage === 1 && i.keyword === 'CMD')!.args);
      const child = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), { cwd: runtime, env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));

      const health = execForm(ins.find((i) => i.stage === 1 && i.keyword === 'HEALTHCHECK')!.args.replace(/^.*?CMD\s+/, ''));
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      // no deadline of its own (a first start runs initdb; the test's timeout bounds it): wait for the banner or an exit
      while (!out.includes('listening on') && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain(`Open ACP Pay listening on http://127.0.0.1:${port}`); // bound to 0.0.0.0 (the image's HOST)
      expect(out).toContain('auth:      jwt');
      // the image's HEALTHCHECK command, as Docker runs it
      let ok = false;
      while (!ok && child.exitCode === null) {
        ok = spawnSync(health[0] === 'node' ? process.execPath : health[0]!, health.slice(1), { env }).status === 0;
        if (!ok) await new Promise((r) => setTimeout(r, 250));
      }
      expect(ok, out).toBe(true);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(ready.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    },
    900_000,
  );
});

describe('npm start never compiles', () => {
  const stamp = (args: string[], cwd = projectRoot) => spawnSync(process.execPath, [join(cwd, 'scripts', 'build-stamp.mjs'), ...args], { cwd, encoding: 'utf8' });

  it('a build older than the sources is refused with a hint, not compiled', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oap-stamp-'));
    tmpDirs.push(dir);
    for (const f of ['scripts', 'src', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) cpSync(join(projectRoot, f), join(dir, f), { recursive: true });
    // no build at all
    let r = stamp(['check'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('Start-up failed: no build found (dist/src/main.js is missing); run `npm run build` first (npm start never compiles).\n');
    // a build, stamped: accepted
    cpSync(join(projectRoot, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
    expect(stamp(['write'], dir).status).toBe(0);
    expect(stamp(['check'], dir).status).toBe(0);
    // a source changed after the build: refused
    writeFileSync(join(dir, 'src', 'main.ts'), `${readFileSync(join(dir, 'src', 'main.ts'), 'utf8')}\n// changed\n`);
    utimesSync(join(dir, 'src', 'main.ts'), new Date(), new Date());
    r = stamp(['check'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('dist/ was built from other sources than the ones in src/ now; run `npm run build` first');
    // a production tree (dist only, no sources) needs no stamp
    rmSync(join(dir, 'src'), { recursive: true });
    expect(stamp(['check'], dir).status).toBe(0);
  });

  it('package.json: start runs the built output after the check; install builds (prepare); no tsc in start', () => {
    const scripts = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toBe('node scripts/build-stamp.mjs check && node dist/src/main.js');
    expect(scripts.start).not.toMatch(/tsc|build --/);
    expect(scripts.prepare).toBe('node scripts/build-stamp.mjs ensure');
    expect(scripts.build).toMatch(/^tsc -p tsconfig.build.json && node scripts\/build-stamp.mjs write$/);
  });
});
