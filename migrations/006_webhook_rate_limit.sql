-- Rejected (unverified) webhooks per source address and one-minute window (flows.md 12 step 4), shared by every app
-- instance on this database so N instances enforce one limit. `window_minute` is minutes since the Unix epoch.
-- Rows of past windows are deleted by the instances as windows pass.
CREATE TABLE webhook_rate_limit (
  source text NOT NULL,
  window_minute bigint NOT NULL,
  rejections integer NOT NULL,
  PRIMARY KEY (source, window_minute)
);
CREATE INDEX webhook_rate_limit_window ON webhook_rate_limit (window_minute);
