/**
 * Webhook inbox processing (flows.md 12, states.md 5). Full implementation follows.
 */
import type { AppDeps } from './context.js';

/** Re-drives `waiting_for_payment` inbox rows of one PSP object right after the payment is stored. */
export async function processWaitingWebhooksFor(deps: AppDeps, tenant: string, pspObjectId: string): Promise<void> {
  void deps; void tenant; void pspObjectId;
}
