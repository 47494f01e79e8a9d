//! Totals from the count buckets must equal counting the calls, for any range and filter, after
//! inserts and after updates that move calls between buckets.

use calltrail::domain::{AccountId, AttemptResult, CallFilter, CallKind, CallScope};
use calltrail::store::search::{count, count_direct};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::{disk_recordings, TestApp};

#[tokio::test]
async fn bucket_totals_equal_direct_counts() {
    let app = TestApp::start("counts").await;
    let token = {
        let (_, t) = calltrail::demo::prepare(&app.store, &disk_recordings(&app.dir), &app.dir, 4_000, 100)
            .await
            .unwrap()
            .unwrap();
        t
    };
    // Move calls between hours, results and operators, and clear some operators.
    let (_, page) = app.get(&token, "/api/v1/calls?limit=200").await;
    let moved: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // Every call moves to 1 January (so every update changes something), some also
            // change result and operator.
            let at = format!("2026-01-01T{:02}:{:02}:00Z", 8 + i / 60, i % 60);
            match i % 3 {
                0 => json!({"external_id": c["external_id"], "started_at": at, "result": "busy", "operator": null}),
                1 => json!({"external_id": c["external_id"], "started_at": at}),
                _ => json!({"external_id": c["external_id"], "started_at": at, "operator": "petrov", "result": null}),
            }
        })
        .collect();
    assert_eq!(app.ingest_ok(&token, json!(moved)).await["updated"], 200);

    let scope = CallScope::whole_account(AccountId(1));
    let mut rng = StdRng::seed_from_u64(3);
    let now = chrono::Utc::now().timestamp_millis();
    let mut checked = 0;
    for i in 0..200 {
        // Spans up to 100 days: whole 32-day blocks, days and hours at the edges.
        let span = rng.random_range(0..100 * 86_400_000i64);
        let lo = now - rng.random_range(0..105 * 86_400_000i64);
        let mut f = CallFilter {
            from: (i % 7 != 0).then_some(lo),
            to: (i % 5 != 0).then_some(lo + span + 1),
            ..CallFilter::default()
        };
        if i % 2 == 0 {
            f.kinds = Some(vec![CallKind::Incoming, CallKind::OperatorCampaign][..rng.random_range(1..3)].to_vec());
        }
        if i % 3 == 0 {
            f.results = vec![AttemptResult::Answered, AttemptResult::Busy];
        }
        if i % 4 == 0 {
            f.operators = vec![rng.random_range(1..20), rng.random_range(1..45)];
        }
        let store = app.store.clone();
        let scope = scope.clone();
        let (bucketed, direct) = store
            .read(move |conn| Ok((count(conn, &scope, &f)?, count_direct(conn, &scope, &f)?)))
            .await
            .unwrap();
        assert_eq!(bucketed, direct, "case {i}");
        checked += usize::from(direct > 0);
    }
    assert!(checked > 100, "most cases count something: {checked}");
    // Every level holds every call once.
    let levels = app
        .store
        .read(|conn| {
            let mut sums = vec![];
            for table in ["call_counts_block", "call_counts_day", "call_counts_hour"] {
                let sql = format!("SELECT CAST(SUM(n) AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM {table}");
                sums.push(conn.query_row(&sql, (), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?);
            }
            Ok(sums)
        })
        .await
        .unwrap();
    assert!(levels.iter().all(|(n, _)| *n == levels[0].0), "{levels:?}");
    assert!(levels[0].1 < levels[1].1 && levels[1].1 < levels[2].1, "{levels:?}");
    let all = app.get(&token, "/api/v1/calls?limit=1").await.1["total"]
        .as_u64()
        .unwrap();
    let moved_to_january = app
        .get(&token, "/api/v1/calls?limit=1&from=2026-01-01&to=2026-01-02&tz=UTC")
        .await
        .1["total"]
        .as_u64();
    assert!(all > 3_500);
    assert_eq!(moved_to_january, Some(200));
    app.stop().await;
}
