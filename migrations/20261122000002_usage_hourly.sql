-- Usage per user and UTC hour, so that a proxy refreshing a user's spend this period sums at
-- most one row an hour instead of every event of the month. The proxy's usage writer adds each
-- batch here in the same transaction as its events (only the events it really inserted, so a
-- replay never counts twice). Billing (UsageSync) still reads `usage_events` itself.
CREATE TABLE usage_hourly (
    user_id            uuid NOT NULL,
    hour               timestamptz NOT NULL CHECK (date_trunc('hour', hour, 'UTC') = hour),
    input_tokens       bigint NOT NULL,
    output_tokens      bigint NOT NULL,
    cost_microdollars  bigint NOT NULL,
    PRIMARY KEY (user_id, hour)
);

INSERT INTO usage_hourly (user_id, hour, input_tokens, output_tokens, cost_microdollars)
SELECT user_id, date_trunc('hour', created_at, 'UTC'), sum(input_tokens)::bigint,
       sum(output_tokens)::bigint, sum(cost_microdollars)::bigint
FROM usage_events
GROUP BY 1, 2;
