-- Every change of a tenants row is announced on the channel `oacp_tenant_changed` (payload: the tenant identifier),
-- whoever writes it (configure, disconnect, key rotation, manual SQL). Each instance keeps the tenants it serves in
-- memory (src/store/tenant-cache.ts) and drops one as soon as its notification arrives; NOTIFY is sent at commit.
CREATE OR REPLACE FUNCTION oacp_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('oacp_tenant_changed', COALESCE(NEW.tenant_identifier, OLD.tenant_identifier));
  RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed_notify
  AFTER INSERT OR UPDATE OR DELETE ON tenants
  FOR EACH ROW EXECUTE FUNCTION oacp_tenant_changed();
