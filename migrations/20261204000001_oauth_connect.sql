-- OAuth connect for Dex instances, and portal sessions.
-- The core migration's oauth_* tables were placeholders no code used; they are replaced.
DROP TABLE IF EXISTS oauth_tokens;
DROP TABLE IF EXISTS oauth_codes;
DROP TABLE IF EXISTS oauth_clients;

-- A Dex instance (a public client: no secret). Recorded at its first consent, with the
-- redirect URI it used then; later requests must use that URI (any port if loopback).
CREATE TABLE oauth_clients (
    id            text PRIMARY KEY,
    redirect_uri  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One user's authorisation of one instance. Revoking it (by Dex, by the user, by reuse
-- detection, by deprovisioning) ends every token issued under it at once.
-- Usage made with its access tokens is recorded with usage_events.api_key_id = grants.id
-- (the column holds the credential: an API key's id or a grant's id).
CREATE TABLE oauth_grants (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id       text NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id, created_at DESC);

CREATE TABLE oauth_codes (
    code_hash       bytea PRIMARY KEY,
    client_id       text NOT NULL,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri    text NOT NULL,
    code_challenge  text NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    -- The grant its exchange created: a second use of the code revokes it.
    grant_id        uuid REFERENCES oauth_grants(id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- An access token and its refresh token, issued together. Using the refresh token rotates
-- the pair: `rotated_at` and `successor_id` are set and a new row is inserted.
CREATE TABLE oauth_tokens (
    id                  uuid PRIMARY KEY,
    grant_id            uuid NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    user_id             uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_hash         bytea NOT NULL UNIQUE,
    refresh_hash        bytea NOT NULL UNIQUE,
    access_expires_at   timestamptz NOT NULL,
    refresh_expires_at  timestamptz NOT NULL,
    rotated_at          timestamptz,
    successor_id        uuid REFERENCES oauth_tokens(id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_live ON oauth_tokens (access_expires_at);

-- Every proxy instance learns of new access tokens and ended grants within milliseconds.
CREATE TRIGGER oauth_tokens_notify AFTER INSERT ON oauth_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_key_change();
CREATE TRIGGER oauth_grants_notify AFTER UPDATE OF revoked_at ON oauth_grants
    FOR EACH ROW EXECUTE FUNCTION notify_key_change();

-- Browser sessions of the portal. The cookie holds a random id; only its hash is stored.
CREATE TABLE portal_sessions (
    id_hash              bytea PRIMARY KEY,
    user_id              uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Set when the account was created inside an OAuth connect flow for this client:
    -- that signup is the user's consent (once), as the connect flow promises.
    auto_approve_client  text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL
);
CREATE INDEX portal_sessions_user ON portal_sessions (user_id);
