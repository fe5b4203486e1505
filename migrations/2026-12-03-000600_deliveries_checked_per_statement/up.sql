-- Signal deliveries lose their two foreign keys; what the keys did for the
-- table's one writer is kept by cheaper means.
--
-- A publish to N devices inserts N delivery rows, and PostgreSQL checked
-- both foreign keys of every row with a query of its own: 2N lookups with
-- a KEY SHARE lock each. For 1,000 devices that was 7.5 of the insert's
-- 12.9 ms on an idle database, and about 9 ms of the publish under load
-- (docs/benchmarks.md, "Fan-out"), paid before any device may be woken.
-- Neither check can fail:
--  * a delivery row is only written in the transaction that writes its
--    signal (the publish, SignalRepository::insert);
--  * its devices are the owner's, read by that publish; devices and
--    signals are only deleted with their owner's account, and that waits
--    for the publish to commit: the signal's own foreign key
--    (signals.owner_id) takes a KEY SHARE lock on the owner's row, which
--    deleting the row must wait for. The account's deletion then sees and
--    deletes the new signal and, through the triggers below, its
--    deliveries.
-- What the keys also did, deleting the deliveries of a deleted signal or
-- device, is done by the triggers below, once per statement and through
-- indexes (the keys' cascades looked a device's deliveries up row by row,
-- without an index on device_id); truncating signals or devices truncates
-- the deliveries too (a foreign key made TRUNCATE name them).

ALTER TABLE signal_deliveries
    DROP CONSTRAINT signal_deliveries_signal_id_fkey,
    DROP CONSTRAINT signal_deliveries_device_id_fkey;

CREATE FUNCTION eagate_delete_deliveries_of_signals() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM signal_deliveries d USING gone WHERE d.signal_id = gone.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER signals_delete_deliveries
    AFTER DELETE ON signals
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION eagate_delete_deliveries_of_signals();

-- A device's deliveries belong to its owner's signals (a device never
-- changes owner): found through the owner's signals
-- (signals_owner_listing_idx) and the primary key.
CREATE FUNCTION eagate_delete_deliveries_of_devices() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM signal_deliveries d
    USING gone, signals s
    WHERE s.owner_id = gone.owner_id AND d.signal_id = s.id AND d.device_id = gone.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER devices_delete_deliveries
    AFTER DELETE ON devices
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION eagate_delete_deliveries_of_devices();

CREATE FUNCTION eagate_truncate_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE signal_deliveries;
    RETURN NULL;
END
$$;

CREATE TRIGGER signals_truncate_deliveries
    AFTER TRUNCATE ON signals
    FOR EACH STATEMENT EXECUTE FUNCTION eagate_truncate_deliveries();

CREATE TRIGGER devices_truncate_deliveries
    AFTER TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION eagate_truncate_deliveries();
