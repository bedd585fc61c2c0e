/**
 * The background workers of one instance. Each is safe to run in several instances at once.
 */
import type { AppDeps } from './app/context.js';
import type { Worker } from './runtime.js';

export function createWorkers(deps: AppDeps): Worker[] {
  void deps;
  return [];
}
