/**
 * Before any test file: dist/ up to date with src/ (`build-stamp.mjs ensure`: builds only when the sources changed).
 * The embedded database runs in a worker thread whose entry is compiled JavaScript (src/store/pglite-thread.ts loads
 * dist/src/store/pglite-worker.js when the app runs from the TypeScript sources, as here).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../src/paths.js';

export default function setup(): void {
  const r = spawnSync(process.execPath, [join(projectRoot, 'scripts', 'build-stamp.mjs'), 'ensure'], { cwd: projectRoot, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status}): the embedded database thread needs dist/`);
}
