//! The page's server side: each user's view preferences, the exports of the filtered view (read
//! back with a real CSV parser and a real XLSX reader), and the embedded page itself.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use calltrail::domain::{Role, TokenScope};
use serde_json::{json, Value};

use crate::common::{error_field, temp_dir, TestApp};

/// Calls with every column filled in one way or another.
fn calls() -> Value {
    json!([
        {
            "external_id": "x1", "kind": "operator_campaign", "from": "+74951112233", "to": "+79161234567",
            "dial_started_at": "2026-11-10T09:15:02Z", "answered_at": "2026-11-10T09:15:11Z",
            "ended_at": "2026-11-10T10:18:40Z", "result": "answered", "operator": "ivanova", "group": "sales",
            "queue": "sales-line", "scenario": {"id": "out", "name": "Outbound sales", "kind": "operator", "url": "https://kit.example/s/1"},
            "campaign": {"id": "nov", "name": "November renewals"}, "price": "1.2500", "currency": "RUB",
            "completion_code": {"id": "callback", "name": "Перезвонить", "callback_at": "2026-11-11T10:00:00Z"},
            "attempts": 2, "tags": ["vip", "loyal"], "topics": ["billing/refund"],
            "notes": [{"id": "n1", "author": "ivanova", "at": "2026-11-10T10:19:00Z", "text": "Asked; to call \"tomorrow\""},
                      {"id": "n2", "author": "petrov", "at": "2026-11-10T10:25:00Z", "text": "Second line"}],
            "recording_url": "https://pbx.example/rec/1.mp3"
        },
        {
            "external_id": "x2", "kind": "incoming", "from": "+79035556677", "to": "+74950000001",
            "scenario_started_at": "2026-11-10T08:00:00Z", "ended_at": "2026-11-10T08:00:40Z",
            "result": "ended_in_ivr", "price": "0", "currency": "RUB"
        },
        {
            "external_id": "x3", "kind": "softphone_outgoing", "from": "+74950000002", "to": "+79269998877",
            "dial_started_at": "2026-11-09T21:30:00Z", "ended_at": "2026-11-09T21:30:20Z",
            "result": "busy", "operator": "petrov", "group": "support", "attempts": 3
        }
    ])
}

async fn app_with_calls(name: &str) -> (TestApp, String) {
    let app = TestApp::start(name).await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, calls()).await;
    // x1's recording is in storage (its URL alone would wait for a fetch).
    let (status, _) = app
        .upload(&owner, "x1", "audio/wav", crate::common::wav_bytes(2_000, 3))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send("PUT", &owner, "/api/v1/settings", Some(json!({"timezone": "UTC"})))
        .await;
    assert_eq!(status, 200);
    (app, owner)
}

#[tokio::test]
async fn preferences_are_checked_kept_and_reset() {
    let (app, owner) = app_with_calls("prefs").await;
    let (status, body) = app.get(&owner, "/api/v1/me/preferences").await;
    assert_eq!(status, 200);
    assert_eq!(body["columns"].as_array().unwrap().len(), 18);
    assert_eq!(
        (&body["columns_chosen"], &body["lang"], &body["timezone"]),
        (&json!(false), &Value::Null, &Value::Null)
    );

    let change = json!({"columns": ["to", "time", "result"], "lang": "en", "timezone": "Asia/Tokyo"});
    let (status, body) = app.send("PUT", &owner, "/api/v1/me/preferences", Some(change)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"columns": ["to", "time", "result"], "columns_chosen": true, "lang": "en", "timezone": "Asia/Tokyo"})
    );
    // A PUT changes what it names and nothing else.
    let (_, body) = app
        .send("PUT", &owner, "/api/v1/me/preferences", Some(json!({"lang": "ru"})))
        .await;
    assert_eq!((&body["lang"], &body["timezone"]), (&json!("ru"), &json!("Asia/Tokyo")));
    assert_eq!(body["columns"], json!(["to", "time", "result"]));

    // Bad input names its field and changes nothing.
    for (bad, field) in [
        (json!({"columns": ["time", "duration"]}), "columns"),
        (json!({"columns": ["time", "time"]}), "columns"),
        (json!({"columns": []}), "columns"),
        (json!({"columns": "time"}), "columns"),
        (json!({"lang": "de"}), "lang"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"theme": "dark"}), "theme"),
    ] {
        let (status, body) = app
            .send("PUT", &owner, "/api/v1/me/preferences", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(error_field(&body), field, "{bad}: {body}");
    }
    let (_, after) = app.get(&owner, "/api/v1/me/preferences").await;
    assert_eq!(after["columns"], json!(["to", "time", "result"]));

    // null returns to the default.
    let (_, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/me/preferences",
            Some(json!({"columns": null, "timezone": null})),
        )
        .await;
    assert_eq!(body["columns"].as_array().unwrap().len(), 18);
    assert_eq!(
        (&body["columns_chosen"], &body["timezone"]),
        (&json!(false), &Value::Null)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_users_time_zone_is_the_default_for_their_searches() {
    let (app, owner) = app_with_calls("prefs-tz").await;
    // x3 started at 21:30 UTC on the 9th: the 10th in Tokyo, the 9th in UTC (the account's zone).
    let day = "from=2026-11-10&to=2026-11-11";
    assert_eq!(app.search_ids(&owner, day).await.len(), 2);
    app.send(
        "PUT",
        &owner,
        "/api/v1/me/preferences",
        Some(json!({"timezone": "Asia/Tokyo"})),
    )
    .await;
    assert_eq!(app.search_ids(&owner, day).await.len(), 3);
    // An explicit tz still wins.
    assert_eq!(app.search_ids(&owner, &format!("{day}&tz=UTC")).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_restricted_role_keeps_no_price_column_even_from_an_earlier_role() {
    let (app, owner) = app_with_calls("prefs-demoted").await;
    let boss = app.token("default", "boss", Role::Manager, TokenScope::Full).await;
    let (status, _) = app
        .send(
            "PUT",
            &boss,
            "/api/v1/me/preferences",
            Some(json!({"columns": ["time", "price", "to"]})),
        )
        .await;
    assert_eq!(status, 200);
    let id = app.user_id(&owner, "boss").await;
    let (status, _) = app
        .send(
            "PUT",
            &owner,
            &format!("/api/v1/users/{id}"),
            Some(json!({"role": "supervisor"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = app.get(&boss, "/api/v1/me/preferences").await;
    assert_eq!(body["columns"], json!(["time", "to"]));
    app.stop().await;
}

/// Parses an export with a real CSV reader (`;`, quotes, the BOM stripped).
fn parse_csv(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark");
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(&bytes[3..])
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

async fn download(app: &TestApp, token: &str, query: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = app.fetch(token, &format!("/api/v1/calls/export?{query}")).await;
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn csv_export_matches_the_search_cell_by_cell_in_russian() {
    let (app, owner) = app_with_calls("export-csv").await;
    let query = "from=2026-11-09&to=2026-11-11&tz=Europe/Moscow";
    let (status, headers, bytes) = download(&app, &owner, &format!("format=csv&lang=ru&{query}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"calls_2026-11-09_2026-11-10_exported_"),
        "{disposition}"
    );
    let rows = parse_csv(&bytes, b';');
    assert_eq!(
        rows[0],
        [
            "Время (Europe/Moscow)",
            "Тип",
            "Звонок с",
            "Звонок к",
            "Оператор",
            "Очередь",
            "Длительность дозвона, с",
            "Длительность разговора, с",
            "Запись",
            "Цена",
            "Сценарий",
            "Кампания",
            "Результат попытки",
            "Код завершения",
            "Попытки",
            "Теги",
            "Тематики",
            "Заметки"
        ]
    );
    let (_, page) = app.get(&owner, &format!("/api/v1/calls?{query}")).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(rows.len() - 1, items.len());
    let x1 = &rows[1];
    assert_eq!(items[0]["external_id"], "x1", "newest first, like the search");
    let recording = format!(
        "{}/api/v1/calls/{}/recording",
        "http://127.0.0.1",
        items[0]["id"].as_str().unwrap()
    );
    assert_eq!(
        x1,
        &[
            "2026-11-10 12:15:02",
            "Исходящий",
            "+74951112233",
            "+79161234567",
            "ivanova",
            "sales-line",
            "9",
            "3809",
            recording.as_str(),
            "1,25",
            "Outbound sales",
            "November renewals",
            "Вызов принят",
            "Перезвонить (2026-11-11 13:00:00)",
            "2",
            "loyal, vip",
            "billing/refund",
            "2026-11-10 13:19:00 ivanova: Asked; to call \"tomorrow\"\n2026-11-10 13:25:00 petrov: Second line"
        ]
        .map(String::from)
    );
    // An incoming call has no ring duration; attempts only for operator campaigns.
    assert_eq!(
        rows[2],
        [
            "2026-11-10 11:00:00",
            "Входящий",
            "+79035556677",
            "+74950000001",
            "",
            "",
            "",
            "40",
            "",
            "0,00",
            "",
            "",
            "Завершен в IVR",
            "",
            "",
            "",
            "",
            ""
        ]
        .map(String::from)
    );
    assert_eq!(&rows[3][4], "petrov (софтфон)");
    assert_eq!(&rows[3][14], "", "attempts are for operator campaigns only");

    // English: `,` by default, English labels; chosen columns in their order.
    let (_, _, bytes) = download(&app, &owner, &format!("format=csv&lang=en&columns=result,to&{query}")).await;
    let rows = parse_csv(&bytes, b',');
    assert_eq!(rows[0], ["Attempt result", "To"]);
    assert_eq!(rows[1], ["Answered", "+79161234567"]);
    // The user's own column choice is the default.
    app.send(
        "PUT",
        &owner,
        "/api/v1/me/preferences",
        Some(json!({"columns": ["from", "talk_duration"]})),
    )
    .await;
    let (_, _, bytes) = download(&app, &owner, &format!("format=csv&lang=ru&delimiter=,&{query}")).await;
    let rows = parse_csv(&bytes, b',');
    assert_eq!(rows[0], ["Звонок с", "Длительность разговора, с"]);
    assert_eq!(rows.len(), 4);

    // Every export is in the audit log.
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=export").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["detail"]["rows"], 3);
    assert_eq!(entries[0]["detail"]["columns"], json!(["from", "talk_duration"]));
    app.stop().await;
}

#[tokio::test]
async fn a_supervisors_export_has_no_price_and_only_their_operators_calls() {
    let (app, owner) = app_with_calls("export-supervisor").await;
    let sup = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    let ivanova = app.user_id(&owner, "ivanova").await;
    let sup_id = app.user_id(&owner, "sup").await;
    let (status, _) = app
        .send(
            "POST",
            &owner,
            "/api/v1/groups",
            Some(json!({"name": "team", "members": [ivanova], "supervisors": [sup_id]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _, bytes) = download(&app, &sup, "format=csv&lang=ru&tz=UTC").await;
    assert_eq!(status, 200);
    let rows = parse_csv(&bytes, b';');
    assert!(!rows[0].contains(&"Цена".to_string()), "{:?}", rows[0]);
    assert_eq!(rows[0].len(), 17);
    // Only ivanova's call (x1), not petrov's or the call without an operator.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][4], "ivanova");
    app.stop().await;
}

#[tokio::test]
async fn export_refuses_bad_parameters_by_name() {
    let (app, owner) = app_with_calls("export-bad").await;
    for (query, field) in [
        ("", "format"),
        ("format=pdf", "format"),
        ("format=csv&lang=de", "lang"),
        ("format=csv&columns=time,nope", "columns"),
        ("format=csv&delimiter=|", "delimiter"),
        ("format=csv&limit=10", "limit"),
        ("format=csv&number=12", "number"),
        ("format=csv&operator=999999", "operator"),
    ] {
        let (status, body) = app.get(&owner, &format!("/api/v1/calls/export?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error_field(&body), field, "{query}");
    }
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=export").await;
    assert_eq!(audit["items"], json!([]), "a refused export is not an export");
    app.stop().await;
}

#[tokio::test]
async fn xlsx_export_reads_back_with_durations_times_and_coloured_results() {
    let (app, owner) = app_with_calls("export-xlsx").await;
    let query = "format=xlsx&lang=en&tz=UTC&columns=time,talk_duration,result,price,notes";
    let (status, headers, bytes) = download(&app, &owner, query).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), ["Calls", "About"]);
    // The last sheet says what the file holds.
    let about: Vec<(String, String)> = book
        .worksheet_range("About")
        .unwrap()
        .rows()
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect();
    let line = |k: &str| about.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(line("Time zone"), "UTC");
    assert_eq!(line("Rows"), "3");
    assert_eq!(line("Period"), "all time");
    assert_eq!(line("Filters"), "tz=UTC");
    assert_eq!(line("Columns"), "Time, Talk duration, Attempt result, Price, Notes");
    assert!(line("Generated at").starts_with("20"), "{about:?}");
    let sheet = book.worksheet_range("Calls").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    assert_eq!(
        rows[0],
        ["Time (UTC)", "Talk duration", "Attempt result", "Price", "Notes"].map(|s| Data::String(s.into()))
    );
    assert_eq!(rows.len(), 4);
    // x1: 2026-11-10 09:15:02 UTC, talk 3809 s, answered, 1.25.
    let time = match &rows[1][0] {
        Data::DateTime(t) => t.as_f64(),
        other => panic!("a time cell: {other:?}"),
    };
    let expected_time = (chrono::NaiveDate::from_ymd_opt(2026, 11, 10)
        .unwrap()
        .and_hms_opt(9, 15, 2)
        .unwrap()
        - chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap())
    .num_seconds() as f64
        / 86_400.0;
    assert!((time - expected_time).abs() < 1e-6, "{time} vs {expected_time}");
    let talk = match &rows[1][1] {
        Data::DateTime(t) => t.as_f64(),
        Data::Float(f) => *f,
        other => panic!("a duration cell: {other:?}"),
    };
    assert!((talk * 86_400.0 - 3809.0).abs() < 1e-6);
    assert_eq!(rows[1][2], Data::String("Answered".into()));
    assert_eq!(rows[1][3], Data::Float(1.25));
    assert!(matches!(&rows[1][4], Data::String(s) if s.contains("Second line")));
    assert_eq!(rows[3][2], Data::String("Number busy".into()));
    app.stop().await;
}

#[tokio::test]
async fn xlsx_continues_on_the_next_sheet_when_one_is_full() {
    let app = TestApp::start_configured(temp_dir("export-sheets"), |c| c.xlsx_sheet_rows = 2).await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, calls()).await;
    let (status, _, bytes) = download(&app, &owner, "format=xlsx&lang=ru&tz=UTC&columns=from").await;
    assert_eq!(status, 200);
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), ["Звонки", "Звонки 2", "О выгрузке"]);
    let first: Vec<Data> = book
        .worksheet_range("Звонки")
        .unwrap()
        .rows()
        .map(|r| r[0].clone())
        .collect();
    let second: Vec<Data> = book
        .worksheet_range("Звонки 2")
        .unwrap()
        .rows()
        .map(|r| r[0].clone())
        .collect();
    let s = |v: &str| Data::String(v.into());
    assert_eq!(first, [s("Звонок с"), s("+74951112233"), s("+79035556677")]);
    assert_eq!(second, [s("Звонок с"), s("+74950000002")]);
    app.stop().await;
}

#[tokio::test]
async fn the_page_is_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::start("web").await;
    let r = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.text().await.unwrap().contains("/assets/app.js"));
    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let r = app
            .http
            .get(format!("{}/assets/{asset}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with(kind),
            "{asset}"
        );
        let etag = r.headers()["etag"].clone();
        let again = app
            .http
            .get(format!("{}/assets/{asset}", app.base))
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{asset}: unchanged since the last visit");
    }
    for missing in ["../Cargo.toml", "nothing.js"] {
        let r = app
            .http
            .get(format!("{}/assets/{missing}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    app.stop().await;
}

#[tokio::test]
async fn xlsx_export_matches_the_search_cell_by_cell() {
    let (app, owner) = app_with_calls("export-xlsx-cells").await;
    let query = "from=2026-11-09&to=2026-11-11&tz=Europe/Moscow";
    let (_, page) = app.get(&owner, &format!("/api/v1/calls?{query}")).await;
    let items = page["items"].as_array().unwrap();
    let (status, _, bytes) = download(&app, &owner, &format!("format=xlsx&lang=en&{query}")).await;
    assert_eq!(status, 200);
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let rows: Vec<Vec<Data>> = book
        .worksheet_range("Calls")
        .unwrap()
        .rows()
        .map(|r| r.to_vec())
        .collect();
    assert_eq!(rows.len(), items.len() + 1);
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let names = |v: &Value| {
        let mut n: Vec<String> = v.as_array().unwrap().iter().map(|x| text(&x["name"])).collect();
        n.sort();
        n.join(", ")
    };
    let cell = |d: &Data| match d {
        Data::Empty => String::new(),
        Data::Float(f) => f.to_string(),
        other => other.to_string(),
    };
    let seconds = |d: &Data| match d {
        Data::Empty => None,
        Data::DateTime(t) => Some((t.as_f64() * 86_400.0).round() as i64),
        Data::Float(f) => Some((f * 86_400.0).round() as i64),
        other => panic!("a duration: {other:?}"),
    };
    for (row, item) in rows[1..].iter().zip(items) {
        let ctx = text(&item["external_id"]);
        assert_eq!(cell(&row[col("From")]), text(&item["from"]), "{ctx}");
        assert_eq!(cell(&row[col("To")]), text(&item["to"]), "{ctx}");
        let operator = text(&item["operator"]["name"]);
        let operator = if item["kind"] == "softphone_outgoing" {
            format!("{operator} (softphone)")
        } else {
            operator
        };
        assert_eq!(cell(&row[col("Operator")]), operator, "{ctx}");
        assert_eq!(cell(&row[col("Queue")]), text(&item["queue"]["name"]), "{ctx}");
        assert_eq!(
            seconds(&row[col("Talk duration")]),
            item["talk_seconds"].as_i64(),
            "{ctx}"
        );
        assert_eq!(
            seconds(&row[col("Ring duration")]),
            item["ring_seconds"].as_i64(),
            "{ctx}"
        );
        assert_eq!(cell(&row[col("Scenario")]), text(&item["scenario"]["name"]), "{ctx}");
        assert_eq!(cell(&row[col("Campaign")]), text(&item["campaign"]["name"]), "{ctx}");
        let price = item["price"]
            .as_str()
            .map_or(Data::Empty, |p| Data::Float(p.parse().unwrap()));
        assert_eq!(row[col("Price")], price, "{ctx}");
        let result = calltrail::domain::AttemptResult::parse(item["result"].as_str().unwrap()).unwrap();
        assert_eq!(
            cell(&row[col("Attempt result")]),
            result.label(calltrail::domain::Lang::En),
            "{ctx}"
        );
        assert_eq!(cell(&row[col("Tags")]), names(&item["tags"]), "{ctx}");
        assert_eq!(cell(&row[col("Topics")]), names(&item["topics"]), "{ctx}");
        let attempts = if item["kind"] == "operator_campaign" {
            item["attempts"].as_i64().map(|a| a.to_string())
        } else {
            None
        };
        assert_eq!(
            Some(cell(&row[col("Attempts")])).filter(|s| !s.is_empty()),
            attempts,
            "{ctx}"
        );
        assert_eq!(
            cell(&row[col("Notes")]).lines().count(),
            item["notes"].as_array().unwrap().len(),
            "{ctx}"
        );
    }
    app.stop().await;
}

/// The text of one part of an XLSX file (it is a zip of XML parts).
fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut part = zip.by_name(name).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut part, &mut text).unwrap();
    text
}

#[tokio::test]
async fn xlsx_has_a_bold_frozen_header_set_widths_and_coloured_results() {
    let (app, owner) = app_with_calls("export-xlsx-style").await;
    // x1 answered (success), x2 ended in IVR, x3 busy; newest first: x1, x2, x3.
    let (_, _, bytes) = download(&app, &owner, "format=xlsx&lang=en&tz=UTC&columns=time,result,notes").await;
    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(r#"ySplit="1""#) && sheet.contains(r#"state="frozen""#),
        "the header row is frozen: {sheet}"
    );
    assert!(
        sheet.contains(r#"<col min="1" max="1" width="20.7109375""#),
        "Time is 20 wide: {sheet}"
    );
    assert!(
        sheet.contains(r#"<col min="3" max="3" width="48.7109375""#),
        "Notes are 48 wide: {sheet}"
    );
    // The style index of a cell, e.g. B2.
    let style = |cell: &str| -> usize {
        let at = sheet
            .find(&format!(r#"<c r="{cell}""#))
            .unwrap_or_else(|| panic!("{cell} in {sheet}"));
        let tag = &sheet[at..at + sheet[at..].find('>').unwrap()];
        let s = tag
            .split(r#"s=""#)
            .nth(1)
            .unwrap_or_else(|| panic!("{cell} has a style: {tag}"));
        s[..s.find('"').unwrap()].parse().unwrap()
    };
    let styles = xlsx_part(&bytes, "xl/styles.xml");
    let xfs: Vec<&str> = styles.split("<cellXfs").nth(1).unwrap().split("<xf ").skip(1).collect();
    let fonts: Vec<&str> = styles.split("<fonts").nth(1).unwrap().split("<font>").skip(1).collect();
    let fills: Vec<&str> = styles.split("<fills").nth(1).unwrap().split("<fill>").skip(1).collect();
    let index = |xf: &str, attr: &str| -> usize {
        let s = xf.split(&format!(r#"{attr}=""#)).nth(1).unwrap();
        s[..s.find('"').unwrap()].parse().unwrap()
    };
    let look = |cell: &str| {
        let xf = xfs[style(cell)];
        (fonts[index(xf, "fontId")], fills[index(xf, "fillId")])
    };
    let (header_font, _) = look("A1");
    assert!(header_font.contains("<b/>"), "bold header: {header_font}");
    let (ok_font, ok_fill) = look("B2");
    assert!(
        ok_font.contains("FF137A3A") && ok_fill.contains("FFE5F5EB"),
        "green: {ok_font} {ok_fill}"
    );
    for failed in ["B3", "B4"] {
        let (font, fill) = look(failed);
        assert!(
            font.contains("FFB42318") && fill.contains("FFFDECEA"),
            "red {failed}: {font} {fill}"
        );
    }
    app.stop().await;
}
