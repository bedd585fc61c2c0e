/**
 * The embedded Event Platform's message store (messages.md 9.2). Its SQL lives in the repository
 * `src/store/event-hub.ts`; this module keeps the messaging-side names.
 */
export {
  HUB_ACKED_RETENTION_DAYS,
  HUB_LEASE_SECONDS,
  HUB_UNACKED_RETENTION_DAYS,
  hubAck,
  hubHousekeeping,
  hubInsert,
  hubInsertBatch,
  hubInsertBatchWrite,
  hubReceive,
  type HubBatchEntry,
  type HubInsert,
  type HubMessage,
} from '../store/event-hub.js';
