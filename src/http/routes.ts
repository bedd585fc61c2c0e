/**
 * Every route group, one file per endpoint group. Each exports `(app, deps) => Promise<void>`.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app/context.js';
import { authRoutes } from './auth.js';
import { catalogRoutes } from './catalog.js';
import { configureRoutes } from './configure.js';
import { eventPlatformRoutes } from './event-platform.js';
import { marketplaceRoutes } from './marketplace.js';
import { opsRoutes } from './ops.js';
import { paymentRoutes } from './payments.js';
import { paymentPageRoutes } from './payment-page.js';
import { webhookRoutes } from './webhooks.js';
import { preOrderRoutes } from './pre-order.js';
import { glueRoutes } from './glue.js';
import { consoleRoutes } from './console/index.js';

export async function registerRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  await authRoutes(app, deps); // hooks first: applies to every route registered after it
  await opsRoutes(app, deps);
  await catalogRoutes(app, deps);
  await configureRoutes(app, deps);
  await eventPlatformRoutes(app, deps);
  await paymentRoutes(app, deps);
  await marketplaceRoutes(app, deps);
  await webhookRoutes(app, deps);
  await preOrderRoutes(app, deps); // 4.5, 4.6, 4.8
  await glueRoutes(app, deps); // Glue-shaped /payments, /payment-cancellations, /payment-customers (5)
  await paymentPageRoutes(app, deps);
  await consoleRoutes(app, deps); // operator console /console (issue 11)
  for (const m of deps.connectors.modules) {
    const routes = m.routes?.(deps.connectors.env); // a connector's own routes (e.g. a PSP double served in-process)
    if (!routes) continue;
    // In their own scope: their hooks stay theirs, and they are not part of the app's published API (/openapi.json).
    await app.register(async (scope) => {
      scope.addHook('onRoute', (route) => {
        route.schema = { ...(route.schema ?? {}), hide: true };
      });
      await routes(scope, deps);
    });
  }
}
