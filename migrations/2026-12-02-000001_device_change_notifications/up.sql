-- Every server instance caches device credentials (see crates/domain/src/cache.rs).
-- Any change that makes a cached entry stale notifies them all on commit,
-- whoever makes it (an instance, `eagate keys rotate`, an operator's SQL, a
-- cascade from a deleted account). Activity columns (last_seen_at, ...) are
-- not cached and do not notify.
CREATE FUNCTION eagate_notify_device_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eagate_changes', 'd:' || replace(COALESCE(NEW.id, OLD.id)::text, '-', ''));
    RETURN NULL;
END;
$$;

CREATE TRIGGER devices_notify_insert_delete
    AFTER INSERT OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION eagate_notify_device_change();

CREATE TRIGGER devices_notify_update
    AFTER UPDATE ON devices
    FOR EACH ROW
    WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
       OR OLD.secret_key_id IS DISTINCT FROM NEW.secret_key_id
       OR OLD.secret_sealed IS DISTINCT FROM NEW.secret_sealed
       OR OLD.prev_secret_key_id IS DISTINCT FROM NEW.prev_secret_key_id
       OR OLD.prev_secret_sealed IS DISTINCT FROM NEW.prev_secret_sealed
       OR OLD.prev_secret_expires_at IS DISTINCT FROM NEW.prev_secret_expires_at)
    EXECUTE FUNCTION eagate_notify_device_change();
