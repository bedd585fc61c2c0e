/**
 * The connector contract suite (connectors/README.md 3): every flow of flows.md through the public surface (HTTP,
 * published messages, rows), once per connector — the sandbox in-process, Stripe against the project's Stripe fake.
 * A flow a connector's capabilities exclude is skipped with the capability named in its title and a printed line;
 * a flow that fails for a known connector or fake bug is listed in KNOWN_GAPS (skipped with the bug named, never
 * silently). A new connector is done when this suite passes for it.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import type { ConnectorDriver } from './driver.js';
import { FLOWS } from './flows.js';
import { sandboxDriver } from './sandbox-driver.js';
import { stripeDriver } from './stripe-driver.js';

/** Connector id → flow key → the bug that makes this flow fail for the connector (fixed by whoever owns the bug). */
export const KNOWN_GAPS: Record<string, Record<string, string>> = {};

const DRIVERS: ConnectorDriver[] = [sandboxDriver(), stripeDriver()];

for (const driver of DRIVERS) {
  const caps = driver.capabilities();

  describe(`connector contract: ${driver.id}`, () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await driver.start();
    });
    afterAll(async () => {
      await driver.stop();
    });

    for (const flow of FLOWS) {
      const excluded = flow.needs.map((n) => n(caps, driver)).find((r) => r !== null);
      const gap = KNOWN_GAPS[driver.id]?.[flow.key];
      if (excluded) {
        process.stdout.write(`[skip] ${driver.id} ${flow.key}: ${excluded}\n`);
        it.skip(`${flow.title} — skipped: ${excluded}`, () => undefined);
      } else if (gap) {
        process.stdout.write(`[known gap] ${driver.id} ${flow.key}: ${gap}\n`);
        it.skip(`${flow.title} — KNOWN GAP: ${gap}`, () => undefined);
      } else {
        it(flow.title, async () => {
          await flow.run({ app, driver, tenant: `${driver.id}-${flow.key}` });
        }, 90_000);
      }
    }
  });
}
