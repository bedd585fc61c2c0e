/**
 * Console test helpers: an app with two local accounts (operator, viewer), logins with cookies, form posts, and a paid
 * payment with its webhook and messages.
 */
import { expect } from 'vitest';
import { hashPassword } from '../../src/app/console/passwords.js';
import { startTestApp, type TestApp } from './app.js';
import { configureTenant, initialize, payOnPage, type Initialized } from './hosted-flow.js';

export const OPERATOR = { user: 'alice', password: 'correct horse battery staple' };
export const VIEWER = { user: 'bob', password: 'viewer password 123' };

export async function consoleUsersEnv(): Promise<string> {
  return `${OPERATOR.user}:operator:${await hashPassword(OPERATOR.password)},${VIEWER.user}:viewer:${await hashPassword(VIEWER.password)}`;
}

export async function startConsoleApp(env: Record<string, string> = {}): Promise<TestApp> {
  return startTestApp({ CONSOLE_USERS: await consoleUsersEnv(), CONSOLE_SESSION_SECRET: 'console-test-session-secret-0123456789', ...env });
}

export interface Page {
  status: number;
  headers: Headers;
  text: string;
}

export async function get(app: TestApp, path: string, cookie = ''): Promise<Page> {
  const res = await fetch(app.url + path, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

export async function post(app: TestApp, path: string, form: Record<string, string>, cookie = ''): Promise<Page> {
  const res = await fetch(app.url + path, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** `name=value` of the first Set-Cookie header named `name`. */
export function cookieOf(headers: Headers, name: string): string | null {
  for (const c of headers.getSetCookie()) if (c.startsWith(`${name}=`)) return c.split(';')[0]!;
  return null;
}

export const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

export interface Login {
  cookie: string;
  csrf: string;
}

export async function login(app: TestApp, who: { user: string; password: string }): Promise<Login> {
  const r = await post(app, '/console/login', { user: who.user, password: who.password });
  expect(r.status, r.text.slice(0, 300)).toBe(303);
  const cookie = cookieOf(r.headers, 'acp_console');
  expect(cookie).not.toBeNull();
  const page = await get(app, '/console', cookie!);
  expect(page.status).toBe(200);
  return { cookie: cookie!, csrf: csrfOf(page.text) };
}

/** A configured tenant and a paid (authorized) payment. */
export async function paidPayment(app: TestApp, tenant: string): Promise<Initialized> {
  await configureTenant(app, tenant);
  const p = await initialize(app, tenant);
  await payOnPage(app, p.redirectUrl, '4242424242424242');
  return p;
}
