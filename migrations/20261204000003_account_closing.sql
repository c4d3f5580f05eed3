-- Closing an account (DELETE /v1/me, the CloseAccount workflow). A user is `active`, then
-- `closing` from the request until its personal data is erased (`erase_after`, the retention
-- period later), then `closed`: the row stays, under its uuid, as the pseudonymous owner of
-- the billing records the law requires us to keep (subscriptions, usage, Stripe customer id).
ALTER TABLE users
    ADD COLUMN status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'closing', 'closed')),
    ADD COLUMN closing_requested_at timestamptz,
    -- When the personal data is erased; decided once, when closing is requested.
    ADD COLUMN erase_after timestamptz,
    ADD COLUMN erased_at timestamptz,
    ADD CONSTRAINT users_closing_dates CHECK (
        status = 'active' OR (closing_requested_at IS NOT NULL AND erase_after IS NOT NULL));
