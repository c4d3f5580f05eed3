-- A meter event is written down before it is sent (reported_at NULL: sent or maybe sent, not
-- yet known to be accepted) and marked when Stripe accepts it. A run that dies, or is refused,
-- after Stripe took the event leaves the row unconfirmed; the next run sends it again under
-- the same identifier (Stripe counts it once) before reporting anything new on top of it.
ALTER TABLE usage_reports
    ALTER COLUMN reported_at DROP NOT NULL,
    ALTER COLUMN reported_at DROP DEFAULT,
    ADD COLUMN intended_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX usage_reports_unconfirmed ON usage_reports (user_id, month) WHERE reported_at IS NULL;
