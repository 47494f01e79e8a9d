-- Call counts per 32-day block, above the day and hour buckets: a total over all time (or over
-- months) then sums a few thousand rows instead of every day bucket of the account (at 50 million
-- calls over 15 months that was 200,000 rows, 20 ms per total). The blocks are fixed spans of
-- 768 hours from the epoch, so that they nest whole days and hours like the other buckets.
CREATE TABLE call_counts_block (
    account_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    operator_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (account_id, bucket, kind, result, operator_id)
);

INSERT INTO call_counts_block (account_id, bucket, kind, result, operator_id, n)
SELECT account_id, block, kind, result, operator_id, SUM(n)
FROM (
    -- Rounded down also before 1970, as the server's integer division does.
    SELECT account_id, CASE WHEN bucket >= 0 THEN bucket / 32 ELSE (bucket - 31) / 32 END AS block,
        kind, result, operator_id, n
    FROM call_counts_day
) days
GROUP BY account_id, block, kind, result, operator_id;

-- The indexes that find calls by a filter carry the call's id, as SQLite's carry the rowid: a
-- search through one of them then reads the index alone for its ids instead of visiting a call row
-- per candidate. At 10 million calls with PostgreSQL's default 128 MB of shared buffers:
--  * a four-digit number fragment matching 5,000 calls: the page's query 21 → 5 ms in memory, and
--    no longer 10,000 random reads when it is not (number search p95 89 → 16 ms);
--  * 7 days of one campaign in two groups with a tag (20,000 candidates): 18,900 → 600 reads,
--    110 → 38 ms.
DROP INDEX calls_from_idx;
CREATE INDEX calls_from_idx ON calls (account_id, from_number, started_at) INCLUDE (id);
DROP INDEX calls_to_idx;
CREATE INDEX calls_to_idx ON calls (account_id, to_number, started_at) INCLUDE (id);
DROP INDEX calls_campaign_idx;
CREATE INDEX calls_campaign_idx ON calls (account_id, campaign_id, started_at, group_id) INCLUDE (id);
DROP INDEX calls_operator_idx;
CREATE INDEX calls_operator_idx ON calls (account_id, operator_id, started_at, talk_seconds) INCLUDE (id);
DROP INDEX calls_result_idx;
CREATE INDEX calls_result_idx ON calls (account_id, result, started_at, talk_seconds) INCLUDE (id);

-- Index-only scans need the visibility map, which only VACUUM sets. By default autovacuum visits
-- an insert-only table after it grew by 20 % — at 10 million calls not before 2 million new
-- ones, so the recent calls, which most searches read, would be visited row by row. Vacuum the
-- calls after each 1 % (or 10,000 calls) instead, and keep the planner's statistics as fresh.
ALTER TABLE calls SET (
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.01
);

-- New numbers went to the trigram index's pending list, which every number search reads in full
-- until a vacuum merges it: after 100,000 new numbers a look-up took 2.1 ms instead of 0.15 ms,
-- four look-ups per search. Numbers are added once each; add them to the index directly.
SELECT gin_clean_pending_list('numbers_trgm_idx'::regclass);
ALTER INDEX numbers_trgm_idx SET (fastupdate = off);
