/**
 * The sandbox connector: talks to the sandbox PSP only over its HTTP API (sandbox-psp.md).
 */
import type { ConnectorEnv } from '../index.js';
import type { Connector } from '../types.js';

export function createSandboxConnector(env: ConnectorEnv): Connector {
  void env;
  // Placeholder until the sandbox connector lands; payment operations are not implemented yet.
  return {
    id: 'sandbox',
    providerName: 'Sandbox',
    capabilities: { preOrder: true, customer: true, transfers: true, onboarding: true },
    extraSecretFields: [],
    validateFormats: () => ({}),
    checkCredentials: async () => ({ ok: true }),
    afterConfigured: async () => {},
    paymentMethods: () => [{ name: 'Credit Card', strategy: 'hosted-payment-page' }],
  } as unknown as Connector;
}
