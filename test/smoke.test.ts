import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';

describe('server skeleton', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('answers unknown paths with 404 in the error body format', async () => {
    const r = await app.request('/nope');
    expect(r.status).toBe(404);
    expect(r.body.error).toBe(r.body.errors[0].message);
    expect(r.body.errors[0]).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(r.headers.get('x-request-id')).toBeTruthy();
  });

  it('echoes X-Request-Id', async () => {
    const r = await app.request('/nope', { headers: { 'x-request-id': 'abc-123' } });
    expect(r.headers.get('x-request-id')).toBe('abc-123');
  });

  it('applied the migrations', async () => {
    const r = await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
    expect(r.rows[0]!.n).toBeGreaterThan(0);
  });
});
