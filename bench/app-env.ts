/** BENCH_APP_ENV (`NAME=value,...`): settings for the apps a benchmark starts (experiments, e.g. `WEBHOOK_INLINE_CONCURRENCY=0`). */
export function benchAppEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env.BENCH_APP_ENV ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}
