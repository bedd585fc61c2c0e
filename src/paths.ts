import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json), found from this file whether run from src/ or dist/src/. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export const projectRoot = findRoot();
export const migrationsDir = join(projectRoot, 'migrations');
export const appConfigDir = join(projectRoot, 'config', 'app');
/** The sandbox PSP's own tables, applied only when the sandbox connector is enabled (or the sandbox runs standalone). */
export const sandboxMigrationsDir = join(migrationsDir, 'sandbox');
