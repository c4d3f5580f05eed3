-- Accounts, sessions and API keys.
CREATE TABLE users (
    id               uuid PRIMARY KEY,
    email            text NOT NULL UNIQUE,
    password_hash    text NOT NULL,
    name             text,
    -- Bumped by logout; every access token carries the version it was issued under.
    token_version    integer NOT NULL DEFAULT 0,
    stripe_customer_id text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    -- All tokens descended from one login share a family; reuse of a rotated token revokes it.
    family_id    uuid NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    rotated_from  uuid REFERENCES api_keys(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id) WHERE revoked_at IS NULL;

-- Billing.
CREATE TABLE subscriptions (
    id                       uuid PRIMARY KEY,
    user_id                  uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stripe_subscription_id   text NOT NULL UNIQUE,
    stripe_customer_id       text NOT NULL,
    plan                     text NOT NULL CHECK (plan IN ('basic', 'pro')),
    -- Stripe's own status vocabulary: active, trialing, past_due, unpaid, canceled, incomplete...
    status                   text NOT NULL,
    current_period_start     timestamptz,
    current_period_end       timestamptz,
    cancel_at_period_end     boolean NOT NULL DEFAULT false,
    spending_cap_microdollars bigint CHECK (spending_cap_microdollars >= 0),
    -- `created` of the Stripe event last applied: older events never overwrite newer state.
    stripe_state_at          timestamptz NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_user ON subscriptions (user_id);

-- Identities and their provisioning progress.
CREATE TABLE identities (
    id                      uuid PRIMARY KEY,
    user_id                 uuid NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    short_id                text NOT NULL UNIQUE,
    -- Bumped each time provisioning starts over (operator retry after failure, re-subscription
    -- after deletion); workflow keys include it, since a Restate workflow key runs once.
    generation              integer NOT NULL DEFAULT 0,
    status                  text NOT NULL DEFAULT 'pending' CHECK (status IN
                              ('pending', 'provisioning', 'active', 'suspended', 'failed',
                               'deprovisioning', 'deleted')),
    plan                    text CHECK (plan IN ('basic', 'pro')),
    email                   text UNIQUE,
    google_user_id          text,
    -- AES-256-GCM (nonce || ciphertext).
    workspace_password_enc  bytea,
    phone_number            text UNIQUE,
    telnyx_number_id        text,
    signal_status           text NOT NULL DEFAULT 'none' CHECK (signal_status IN
                              ('none', 'pending', 'captcha_required', 'registered', 'failed',
                               'unregistered')),
    signal_failure_reason   text,
    failure_reason          text,
    workflow_id             text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);

CREATE TABLE provisioning_steps (
    identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    step          text NOT NULL,
    position      integer NOT NULL,
    status        text NOT NULL CHECK (status IN
                    ('pending', 'running', 'done', 'failed', 'compensating', 'compensated')),
    attempts      integer NOT NULL DEFAULT 0,
    detail        text,
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (identity_id, step)
);

-- OAuth connect (Dex instances authorised by a user).
CREATE TABLE oauth_clients (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    redirect_uris  text[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE oauth_codes (
    code_hash       bytea PRIMARY KEY,
    client_id       text NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri    text NOT NULL,
    code_challenge  text NOT NULL,
    scope           text NOT NULL DEFAULT '',
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE oauth_tokens (
    id                   uuid PRIMARY KEY,
    client_id            text NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id              uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_token_hash    bytea NOT NULL UNIQUE,
    refresh_token_hash   bytea UNIQUE,
    scope                text NOT NULL DEFAULT '',
    expires_at           timestamptz NOT NULL,
    refresh_expires_at   timestamptz,
    revoked_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_tokens_user ON oauth_tokens (user_id) WHERE revoked_at IS NULL;

-- Usage: one row per proxied request, partitioned by month of `created_at`.
-- (created_at, request_id) is unique, so a replayed event never counts twice.
CREATE TABLE usage_events (
    request_id          text NOT NULL,
    user_id             uuid NOT NULL,
    api_key_id          uuid,
    model               text NOT NULL,
    provider            text NOT NULL,
    input_tokens        bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens       bigint NOT NULL CHECK (output_tokens >= 0),
    cache_read_tokens   bigint NOT NULL DEFAULT 0,
    cache_write_tokens  bigint NOT NULL DEFAULT 0,
    cost_microdollars   bigint NOT NULL CHECK (cost_microdollars >= 0),
    latency_ms          integer NOT NULL DEFAULT 0,
    status_code         integer NOT NULL DEFAULT 200,
    estimated           boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    PRIMARY KEY (created_at, request_id)
) PARTITION BY RANGE (created_at);
CREATE INDEX usage_events_user_time ON usage_events (user_id, created_at);

-- Creates the partition holding `month_start`'s month; true if it was created now.
-- Bounds are UTC midnights whatever the session time zone. Safe under concurrent callers.
CREATE FUNCTION ensure_usage_partition(month_start date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', month_start)::date;
    part text := format('usage_events_%s', to_char(m, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%L) TO (%L)',
        part, m::text || ' 00:00:00+00', (m + interval '1 month')::date::text || ' 00:00:00+00');
    RETURN true;
EXCEPTION WHEN duplicate_table THEN
    RETURN false;
END $$;

SELECT ensure_usage_partition((date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n))::date)
FROM generate_series(-1, 2) AS n;

CREATE TABLE usage_monthly (
    user_id                  uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    month                    date NOT NULL CHECK (extract(day FROM month) = 1),
    plan                     text CHECK (plan IN ('basic', 'pro')),
    input_tokens             bigint NOT NULL DEFAULT 0,
    output_tokens            bigint NOT NULL DEFAULT 0,
    cost_microdollars        bigint NOT NULL DEFAULT 0,
    overage_input_tokens     bigint NOT NULL DEFAULT 0,
    overage_output_tokens    bigint NOT NULL DEFAULT 0,
    -- Cumulative overage already accepted by Stripe: the source of truth for what to report next.
    reported_input_tokens    bigint NOT NULL DEFAULT 0,
    reported_output_tokens   bigint NOT NULL DEFAULT 0,
    synced_at                timestamptz,
    reported_at              timestamptz,
    closed                   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, month)
);

CREATE TABLE usage_reports (
    identifier      text PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    month           date NOT NULL,
    event_name      text NOT NULL,
    cumulative      bigint NOT NULL,
    delta           bigint NOT NULL CHECK (delta > 0),
    reported_at     timestamptz NOT NULL DEFAULT now()
);

-- Communication.
CREATE TABLE incoming_sms (
    id                 uuid PRIMARY KEY,
    identity_id        uuid REFERENCES identities(id) ON DELETE SET NULL,
    to_number          text NOT NULL,
    from_number        text NOT NULL,
    body               text NOT NULL,
    provider_message_id text NOT NULL UNIQUE,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incoming_sms_to ON incoming_sms (to_number, received_at DESC);

-- Webhooks: a provider event id is processed once.
CREATE TABLE webhook_events (
    provider     text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    user_id   uuid,
    action    text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_user ON audit_log (user_id, at);

-- Key revocations and plan changes are broadcast to every proxy instance.
CREATE FUNCTION notify_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('poindexter_keys', COALESCE(NEW.user_id, OLD.user_id)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_notify AFTER INSERT OR DELETE OR UPDATE OF revoked_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_key_change();
CREATE TRIGGER subscriptions_notify AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION notify_key_change();
CREATE TRIGGER identities_notify AFTER UPDATE OF status ON identities
    FOR EACH ROW EXECUTE FUNCTION notify_key_change();
