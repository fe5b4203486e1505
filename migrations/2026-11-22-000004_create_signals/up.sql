-- Trading signals and their per-device deliveries.

CREATE TABLE signals (
    id                  uuid             PRIMARY KEY,
    owner_id            uuid             NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    instrument          text             NOT NULL,
    side                text             NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type          text             NOT NULL CHECK (order_type IN ('market', 'limit', 'stop')),
    volume              double precision NOT NULL CHECK (volume > 0 AND volume <= 1000),
    entry_price         double precision CHECK (entry_price > 0),
    stop_loss           double precision CHECK (stop_loss > 0),
    take_profit         double precision CHECK (take_profit > 0),
    comment             text,
    expires_at          timestamptz,
    created_at          timestamptz      NOT NULL,
    cancelled_at        timestamptz,
    -- Idempotent publishing: the owner's key and a canonical description of
    -- the request it was first used for.
    idempotency_key     text,
    request_description text,
    CHECK ((idempotency_key IS NULL) = (request_description IS NULL))
);
CREATE UNIQUE INDEX signals_owner_idempotency_key ON signals (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX signals_owner_listing_idx ON signals (owner_id, created_at DESC, id DESC);

CREATE TABLE signal_deliveries (
    signal_id       uuid             NOT NULL REFERENCES signals (id) ON DELETE CASCADE,
    device_id       uuid             NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- Copies of the signal's, so polling reads one index.
    created_at      timestamptz      NOT NULL,
    expires_at      timestamptz,
    first_polled_at timestamptz,
    acknowledged_at timestamptz,
    outcome         text             CHECK (outcome IN ('executed', 'rejected', 'failed')),
    ticket          bigint,
    fill_price      double precision,
    message         text,
    cancelled_at    timestamptz,
    PRIMARY KEY (signal_id, device_id),
    CHECK ((acknowledged_at IS NULL) = (outcome IS NULL))
);
-- What a poll reads: a device's open deliveries, oldest first.
CREATE INDEX signal_deliveries_open_idx ON signal_deliveries (device_id, created_at, signal_id)
    WHERE acknowledged_at IS NULL AND cancelled_at IS NULL;
