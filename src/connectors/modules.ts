/**
 * The one list of connector modules. Adding a PSP: one folder `src/connectors/<id>/` exporting its module, one line here.
 */
import { sandboxModule } from './sandbox/index.js';
import { stripeModule } from './stripe/index.js';
import type { ConnectorModule } from './types.js';

export const CONNECTOR_MODULES: readonly ConnectorModule[] = [sandboxModule, stripeModule];
