-- Grows a benchmark database filled by `cargo bench --bench api -- --database-url …` to five
-- times its calls: four copies of every call (with its tags, topics, notes and count buckets),
-- each 90 days further back, with new ids and external ids. How the 50-million-call figures of
-- BENCHMARKS.md were made from the 10-million-call database:
--   psql -h 127.0.0.1 -U postgres -d bench10m -v ON_ERROR_STOP=1 -f benches/grow-postgres.sql
-- Secondary indexes are dropped during the copy and built again after it, then VACUUM ANALYZE.
-- The copies carry no call flow (the steps shown in a call's details, ~290 bytes a call in the
-- demo data; no list, count or export reads it): so that 50 million calls fit the disk of the
-- project's machine (with it, the database needs ~75 GB).
-- A call log, its events and recordings are not copied either (calls with the flag
-- `has_recording` keep it).
-- Ids of the copies are offset by 20 million per copy: the database must hold fewer calls.
\timing on
SET maintenance_work_mem = '2GB';
SET max_parallel_maintenance_workers = 2;
CREATE TEMP TABLE cd0 AS SELECT * FROM call_counts_day;
CREATE TEMP TABLE ch0 AS SELECT * FROM call_counts_hour;
CREATE TEMP TABLE idx AS SELECT indexname, indexdef FROM pg_indexes
  WHERE tablename IN ('calls', 'call_tags', 'call_topics')
    AND indexname NOT IN ('calls_pkey', 'calls_account_id_external_id_key') AND indexname NOT LIKE '%_pkey';
DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexname FROM idx LOOP EXECUTE 'DROP INDEX ' || r.indexname; END LOOP; END $$;
ALTER TABLE calls DROP CONSTRAINT calls_account_id_external_id_key;

DO $$
DECLARE
  off CONSTANT bigint := 20000000;
  day CONSTANT bigint := 86400000;
  id_off bigint;
  shift bigint;
BEGIN
  FOR k IN 1..4 LOOP
    id_off := k * off;
    shift := k * 90 * day;
    INSERT INTO calls (id, account_id, external_id, started_at, kind, from_number, to_number, operator_id, group_id,
        queue_id, scenario_id, campaign_id, completion_code_id, callback_at, ring_seconds, talk_seconds, price_e4,
        currency, result, attempts, explicit_started_at, dial_started_at, answered_at, scenario_started_at,
        amd_detected_at, ended_at, sent_ring_seconds, sent_talk_seconds, recording_url, flow, updated_at, has_recording, label_bits)
      SELECT id + id_off, account_id, external_id || '~' || k, started_at - shift, kind, from_number, to_number,
        operator_id, group_id, queue_id, scenario_id, campaign_id, completion_code_id, callback_at - shift,
        ring_seconds, talk_seconds, price_e4, currency, result, attempts, explicit_started_at - shift,
        dial_started_at - shift, answered_at - shift, scenario_started_at - shift, amd_detected_at - shift,
        ended_at - shift, sent_ring_seconds, sent_talk_seconds, recording_url, NULL, updated_at - shift, has_recording,
        label_bits
      FROM calls WHERE id < off;
    INSERT INTO call_tags (call_id, tag_id) SELECT call_id + id_off, tag_id FROM call_tags WHERE call_id < off;
    INSERT INTO call_topics (call_id, topic_id) SELECT call_id + id_off, topic_id FROM call_topics WHERE call_id < off;
    INSERT INTO call_notes (id, call_id, key, author, at, text)
      SELECT id + id_off, call_id + id_off, key, author, at - shift, text FROM call_notes WHERE call_id < off;
    INSERT INTO call_counts_day (account_id, bucket, kind, result, operator_id, n)
      SELECT account_id, bucket - k * 90, kind, result, operator_id, n FROM cd0
      ON CONFLICT (account_id, bucket, kind, result, operator_id) DO UPDATE SET n = call_counts_day.n + excluded.n;
    INSERT INTO call_counts_hour (account_id, bucket, kind, result, operator_id, n)
      SELECT account_id, bucket - k * 90 * 24, kind, result, operator_id, n FROM ch0
      ON CONFLICT (account_id, bucket, kind, result, operator_id) DO UPDATE SET n = call_counts_hour.n + excluded.n;
  END LOOP;
END $$;
-- The 32-day blocks again from the grown days (the copies' shifts of 90 days are not whole blocks).
DELETE FROM call_counts_block;
INSERT INTO call_counts_block (account_id, bucket, kind, result, operator_id, n)
  SELECT account_id, CASE WHEN bucket >= 0 THEN bucket / 32 ELSE (bucket - 31) / 32 END AS block, kind, result,
    operator_id, SUM(n)
  FROM call_counts_day GROUP BY account_id, block, kind, result, operator_id;

ALTER TABLE calls ADD CONSTRAINT calls_account_id_external_id_key UNIQUE (account_id, external_id);
DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexdef FROM idx LOOP EXECUTE r.indexdef; END LOOP; END $$;
SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls) + 1, false);
SELECT setval(pg_get_serial_sequence('call_notes', 'id'), (SELECT max(id) FROM call_notes) + 1, false);
VACUUM ANALYZE;
SELECT count(*) FROM calls;
