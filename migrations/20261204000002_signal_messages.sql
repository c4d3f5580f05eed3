-- Signal messages as the per-number receiver (workflows: SignalReceiver) took them from
-- signal-cli, stored before the next receive, read by Dex with a cursor that acknowledges
-- nothing. The natural key (identity, sender, envelope timestamp) makes a replayed store a no-op.
CREATE TABLE signal_messages (
    -- The read cursor. Writers of one identity serialise on an advisory lock, so ids become
    -- visible in order and a reader never skips a lower id committed later.
    id            bigserial PRIMARY KEY,
    identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    number        text NOT NULL,
    sender        text NOT NULL,
    sender_name   text,
    -- signal-cli's envelope timestamp (ms since the epoch, set by the sender's client).
    sent_at_ms    bigint NOT NULL,
    body          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (identity_id, sender, sent_at_ms)
);
CREATE INDEX signal_messages_identity_cursor ON signal_messages (identity_id, id);
CREATE INDEX signal_messages_received_at ON signal_messages (received_at);

-- Keep-alive per number: when signal-cli was last received from, and the last error.
CREATE TABLE signal_receivers (
    number            text PRIMARY KEY,
    identity_id       uuid REFERENCES identities(id) ON DELETE CASCADE,
    last_received_at  timestamptz,
    last_error        text,
    last_error_at     timestamptz,
    running           boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
