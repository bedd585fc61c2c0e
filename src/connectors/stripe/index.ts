/**
 * The Stripe connector module (stripe.md): Stripe through the official `stripe` SDK. No routes, workers or tables of
 * its own; its variables (STRIPE_API_BASE, STRIPE_JS_URL) are parsed in src/config.ts.
 */
import type { ConnectorModule } from '../types.js';
import { createStripeConnector } from './connector.js';
import { STRIPE_SECRET_FIELDS } from './settings.js';

export const stripeModule: ConnectorModule = {
  id: 'stripe',
  providerName: 'Stripe',
  secretFields: STRIPE_SECRET_FIELDS,
  create: (env) =>
    createStripeConnector({
      apiBase: () => env.config.stripeApiBase,
      jsUrl: () => env.config.stripeJsUrl,
      appIdentifier: () => env.config.appIdentifier,
      maxDeclinedAttempts: () => env.config.stripeMaxDeclinedAttempts,
      log: env.log,
    }),
  describe: (env) => `stripe (API ${env.config.stripeApiBase}, Stripe.js ${env.config.stripeJsUrl})`,
};
