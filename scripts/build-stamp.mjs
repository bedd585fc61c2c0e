#!/usr/bin/env node
// Build stamp: `npm start` never compiles. `npm run build` compiles TypeScript into dist/ and records a hash of the
// sources it compiled (dist/.build-stamp); `prepare` (run by `npm install` / `npm ci`) builds only when that hash
// differs; `npm start` checks it and refuses a missing or stale build with a one-line hint instead of compiling.
// Plain JavaScript on purpose: it runs before anything is compiled and needs no dependency.
//
//   node scripts/build-stamp.mjs write    record the stamp (after tsc)
//   node scripts/build-stamp.mjs check    exit 1 with a hint when dist/ is missing or older than the sources
//   node scripts/build-stamp.mjs ensure   build when needed (prepare); a production tree without TypeScript is left alone
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = join(root, 'dist', '.build-stamp');
const MAIN = join(root, 'dist', 'src', 'main.js');
const INPUTS = ['src', 'bench', 'scripts', 'tsconfig.json', 'tsconfig.build.json'];

function files(p) {
  if (!existsSync(p)) return [];
  if (statSync(p).isDirectory()) return readdirSync(p).sort().flatMap((f) => files(join(p, f)));
  return p.endsWith('.ts') || p.endsWith('.json') ? [p] : [];
}

/** Hash of the compiled sources, or null when they are not here (a production image ships dist/ only). */
function sourceHash() {
  if (!existsSync(join(root, 'src'))) return null;
  const h = createHash('sha256');
  for (const f of INPUTS.flatMap((i) => files(join(root, i)))) {
    if (f.includes(`${join('scripts', 'schemas')}`)) continue;
    h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex');
}

function problem() {
  if (!existsSync(MAIN)) return 'no build found (dist/src/main.js is missing)';
  const want = sourceHash();
  if (want === null) return null;
  const have = existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : '';
  return have === want ? null : 'dist/ was built from other sources than the ones in src/ now';
}

const cmd = process.argv[2];
if (cmd === 'write') {
  const h = sourceHash();
  if (h !== null) writeFileSync(STAMP, `${h}\n`);
} else if (cmd === 'check') {
  const p = problem();
  if (p) {
    process.stderr.write(`Start-up failed: ${p}; run \`npm run build\` first (npm start never compiles).\n`);
    process.exit(1);
  }
} else if (cmd === 'ensure') {
  const p = problem();
  if (p === null) process.exit(0);
  if (!existsSync(join(root, 'node_modules', 'typescript'))) {
    process.stderr.write(`build-stamp: ${p}, and TypeScript is not installed here (production install?): skipping the build.\n`);
    process.exit(0);
  }
  const npm = process.env.npm_execpath;
  const r = npm ? spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { cwd: root, stdio: 'inherit' }) : spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit', shell: true });
  process.exit(r.status ?? 1);
} else {
  process.stderr.write('usage: node scripts/build-stamp.mjs write|check|ensure\n');
  process.exit(2);
}
