-- Connector port v2 (connectors/README.md 1, 2): tenants carry their connector like payments do, and every payment
-- has one opaque jsonb value only its connector reads (`pspData`: PSP references, client secret, capture ids).
ALTER TABLE tenants ADD COLUMN connector text;
ALTER TABLE payments ADD COLUMN psp_data jsonb NOT NULL DEFAULT '{}'::jsonb;
-- Declined attempts counted once per PSP attempt (stripe.md 3.4, 8): the attempt ids seen, per payment.
ALTER TABLE payments ADD COLUMN declined_attempts jsonb NOT NULL DEFAULT '[]'::jsonb;
