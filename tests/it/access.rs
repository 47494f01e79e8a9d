//! The permission matrix: every role × every endpoint × in and out of scope × both call-history
//! switches, from one table. The table must name every operation of the OpenAPI document, so an
//! endpoint cannot be added without deciding (and testing) who may use it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use calltrail::domain::{Role, TokenScope};
use serde_json::{json, Value};

use calltrail::config::AuthConfig;
use md5::Digest;

use crate::common::{collect_live, temp_dir, TestApp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Owner,
    Admin,
    Manager,
    /// Connected to group alpha.
    Supervisor,
    /// Member of alpha.
    Op1,
    /// Member of beta.
    Op2,
    /// An ingest-scope token.
    Feeder,
    Anonymous,
}

const EVERYONE: [Who; 8] = [
    Who::Owner,
    Who::Admin,
    Who::Manager,
    Who::Supervisor,
    Who::Op1,
    Who::Op2,
    Who::Feeder,
    Who::Anonymous,
];

impl Who {
    fn full_view(self) -> bool {
        matches!(self, Who::Owner | Who::Admin | Who::Manager)
    }

    fn reader(self) -> bool {
        !matches!(self, Who::Feeder | Who::Anonymous)
    }

    fn login(self) -> &'static str {
        match self {
            Who::Owner => "owner",
            Who::Admin => "admin",
            Who::Manager => "manager",
            Who::Supervisor => "sup",
            Who::Op1 => "op1",
            Who::Op2 => "op2",
            Who::Feeder => "feeder",
            Who::Anonymous => "",
        }
    }
}

/// The account switch and the switch of group alpha.
#[derive(Debug, Clone, Copy)]
struct Switches {
    account: bool,
    alpha: bool,
}

/// Which id a row's `{id}` stands for.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Something of this account that the principal may see (or the full roles may).
    InScope,
    /// Something of this account outside a restricted principal's scope.
    OutOfScope,
    /// Something of the other account.
    OtherAccount,
}

#[derive(Debug, Clone, Copy)]
enum Check {
    /// Same answer for everyone, signed in or not.
    Public(u16),
    /// Call search: the exact visible set, the total, the redacted fields.
    Calls(&'static str),
    CallDetail(Target),
    /// Opens; the events themselves are checked by `live_events_respect_scope`.
    Live,
    Ingest,
    DirectoryList,
    Users,
    User(Target),
    CreateUser,
    UpdateUser(Target),
    Groups,
    Group(Target),
    CreateGroup,
    UpdateGroup(Target),
    Settings,
    UpdateSettings,
    Audit,
    Me,
    Preferences,
    UpdatePreferences,
    Export,
    StartExport,
    Exports,
    ExportJob,
    CancelExport,
    ExportFile,
    SignIn,
    SessionRead,
    SignOut,
    /// Plays (`false`) or downloads (`true`) the call's recording; the account lets restricted
    /// roles play only (the default).
    Recording(Target, bool),
    UploadRecording,
    LogLink(Target),
    RevokeLogLinks(Target),
    QmSettings,
    UpdateQmSettings,
    QmConnect,
    StartQmExport,
    QmExports,
    /// One QM export (GET, DELETE, POST …/rerun): the account's own, or another account's.
    QmExport(Target),
    /// A FreeSWITCH leg posted (bearer here; Basic is tested in pbx.rs).
    IngestFreeswitch,
    /// The reference product's webhook, with the hash of the salt the check sets first.
    IngestKit,
    /// An administrator's settings (PBX, the reference product's subscription, ingestion health).
    AdminOnly,
    /// A kept refusal: read it, or replay it (refused again, as nothing was fixed).
    Rejection,
    /// The reference product's search: the same calls and fields our own search shows.
    CompatSearch,
    /// The reference product's export and its report: started, and a report that is not there.
    CompatReport,
}

struct Row {
    method: &'static str,
    path: &'static str,
    check: Check,
}

const fn row(method: &'static str, path: &'static str, check: Check) -> Row {
    Row { method, path, check }
}

/// The matrix. Several rows may test one operation (in and out of scope, other queries).
const MATRIX: &[Row] = &[
    row("GET", "/healthz", Check::Public(200)),
    row("GET", "/api/v1/openapi.json", Check::Public(200)),
    row("POST", "/api/v1/ingest/calls", Check::Ingest),
    row("GET", "/api/v1/calls", Check::Calls("")),
    // Answered from the day buckets (whole days), then from the hour buckets and the calls.
    row(
        "GET",
        "/api/v1/calls",
        Check::Calls("tz=UTC&from=2026-11-01&to=2026-12-01"),
    ),
    row(
        "GET",
        "/api/v1/calls",
        Check::Calls("tz=UTC&from=2026-11-10T08:30:00Z&to=2026-11-12T00:00:00Z"),
    ),
    row("GET", "/api/v1/calls", Check::Calls("result=answered")),
    row("GET", "/api/v1/calls/{id}", Check::CallDetail(Target::InScope)),
    row("GET", "/api/v1/calls/{id}", Check::CallDetail(Target::OutOfScope)),
    row("GET", "/api/v1/calls/{id}", Check::CallDetail(Target::OtherAccount)),
    row("GET", "/api/v1/calls/live", Check::Live),
    row("GET", "/api/v1/queues", Check::DirectoryList),
    row("GET", "/api/v1/scenarios", Check::DirectoryList),
    row("GET", "/api/v1/campaigns", Check::DirectoryList),
    row("GET", "/api/v1/completion-codes", Check::DirectoryList),
    row("GET", "/api/v1/tags", Check::DirectoryList),
    row("GET", "/api/v1/topics", Check::DirectoryList),
    row("GET", "/api/v1/users", Check::Users),
    row("GET", "/api/v1/users/{id}", Check::User(Target::InScope)),
    row("GET", "/api/v1/users/{id}", Check::User(Target::OutOfScope)),
    row("GET", "/api/v1/users/{id}", Check::User(Target::OtherAccount)),
    row("POST", "/api/v1/users", Check::CreateUser),
    row("PUT", "/api/v1/users/{id}", Check::UpdateUser(Target::InScope)),
    row("PUT", "/api/v1/users/{id}", Check::UpdateUser(Target::OtherAccount)),
    row("GET", "/api/v1/groups", Check::Groups),
    row("GET", "/api/v1/groups/{id}", Check::Group(Target::InScope)),
    row("GET", "/api/v1/groups/{id}", Check::Group(Target::OutOfScope)),
    row("GET", "/api/v1/groups/{id}", Check::Group(Target::OtherAccount)),
    row("POST", "/api/v1/groups", Check::CreateGroup),
    row("PUT", "/api/v1/groups/{id}", Check::UpdateGroup(Target::InScope)),
    row("PUT", "/api/v1/groups/{id}", Check::UpdateGroup(Target::OtherAccount)),
    row("GET", "/api/v1/settings", Check::Settings),
    row("PUT", "/api/v1/settings", Check::UpdateSettings),
    row("GET", "/api/v1/audit", Check::Audit),
    row("GET", "/api/v1/me", Check::Me),
    row("GET", "/api/v1/me/preferences", Check::Preferences),
    row("PUT", "/api/v1/me/preferences", Check::UpdatePreferences),
    row("GET", "/api/v1/calls/export", Check::Export),
    row("POST", "/api/v1/exports", Check::StartExport),
    row("GET", "/api/v1/exports", Check::Exports),
    row("GET", "/api/v1/exports/{id}", Check::ExportJob),
    row("DELETE", "/api/v1/exports/{id}", Check::CancelExport),
    row("GET", "/api/v1/exports/{id}/file", Check::ExportFile),
    row("GET", "/api/v1/integrations/qm", Check::QmSettings),
    row("PUT", "/api/v1/integrations/qm", Check::UpdateQmSettings),
    row("POST", "/api/v1/integrations/qm/connect", Check::QmConnect),
    row("POST", "/api/v1/integrations/qm/exports", Check::StartQmExport),
    row("GET", "/api/v1/integrations/qm/exports", Check::QmExports),
    row(
        "GET",
        "/api/v1/integrations/qm/exports/{id}",
        Check::QmExport(Target::InScope),
    ),
    row(
        "GET",
        "/api/v1/integrations/qm/exports/{id}",
        Check::QmExport(Target::OtherAccount),
    ),
    row(
        "DELETE",
        "/api/v1/integrations/qm/exports/{id}",
        Check::QmExport(Target::InScope),
    ),
    row(
        "DELETE",
        "/api/v1/integrations/qm/exports/{id}",
        Check::QmExport(Target::OtherAccount),
    ),
    row(
        "POST",
        "/api/v1/integrations/qm/exports/{id}/rerun",
        Check::QmExport(Target::InScope),
    ),
    row(
        "POST",
        "/api/v1/integrations/qm/exports/{id}/rerun",
        Check::QmExport(Target::OtherAccount),
    ),
    row("POST", "/api/v1/ingest/freeswitch", Check::IngestFreeswitch),
    row("POST", "/api/v1/ingest/voximplant-kit", Check::IngestKit),
    row("GET", "/api/v1/integrations/pbx", Check::AdminOnly),
    row("PUT", "/api/v1/integrations/pbx", Check::AdminOnly),
    row("GET", "/api/v1/integrations/voximplant-kit", Check::AdminOnly),
    row("PUT", "/api/v1/integrations/voximplant-kit", Check::AdminOnly),
    row("GET", "/api/v1/ingest/health", Check::AdminOnly),
    row("GET", "/api/v1/ingest/rejections/{id}", Check::Rejection),
    row("POST", "/api/v1/ingest/rejections/{id}/replay", Check::Rejection),
    row("GET", "/api/v3/history/searchCalls", Check::CompatSearch),
    row("POST", "/api/v4/history/searchCalls", Check::CompatSearch),
    row("POST", "/api/v3/history/exportCallsHistoryReport", Check::CompatReport),
    row("POST", "/api/v3/report/getReportStatus", Check::CompatReport),
    row("POST", "/api/v3/report/downloadReport", Check::CompatReport),
    // The QM system's signed recording link: no account needed; without a valid signature it
    // is nothing, for everyone.
    row("GET", "/qm/recordings/{file}", Check::Public(404)),
    row("POST", "/api/v1/session", Check::SignIn),
    row("GET", "/api/v1/session", Check::SessionRead),
    row("DELETE", "/api/v1/session", Check::SignOut),
    row(
        "GET",
        "/api/v1/calls/{id}/recording",
        Check::Recording(Target::InScope, false),
    ),
    row(
        "GET",
        "/api/v1/calls/{id}/recording",
        Check::Recording(Target::InScope, true),
    ),
    row(
        "GET",
        "/api/v1/calls/{id}/recording",
        Check::Recording(Target::OutOfScope, false),
    ),
    row(
        "GET",
        "/api/v1/calls/{id}/recording",
        Check::Recording(Target::OtherAccount, false),
    ),
    row(
        "PUT",
        "/api/v1/ingest/calls/{external_id}/recording",
        Check::UploadRecording,
    ),
    row("POST", "/api/v1/calls/{id}/log-link", Check::LogLink(Target::InScope)),
    row(
        "POST",
        "/api/v1/calls/{id}/log-link",
        Check::LogLink(Target::OutOfScope),
    ),
    row(
        "POST",
        "/api/v1/calls/{id}/log-link",
        Check::LogLink(Target::OtherAccount),
    ),
    row(
        "DELETE",
        "/api/v1/calls/{id}/log-link",
        Check::RevokeLogLinks(Target::InScope),
    ),
    row(
        "DELETE",
        "/api/v1/calls/{id}/log-link",
        Check::RevokeLogLinks(Target::OtherAccount),
    ),
];

/// The recording every call of the matrix has.
fn matrix_recording() -> Vec<u8> {
    crate::common::wav_bytes(4_000, 1)
}

/// The calls of the account: external id → the operator's login (None: no operator).
const CALLS: [(&str, Option<&str>); 4] = [
    ("a1", Some("op1")),
    ("b1", Some("op2")),
    ("s1", Some("sup")),
    ("n1", None),
];

fn call(external_id: &str, operator: Option<&str>, hour: u32) -> Value {
    let mut c = json!({
        "external_id": external_id, "kind": "incoming", "from": "+79161230000", "to": "+74950000001",
        "scenario_started_at": format!("2026-11-10T{hour:02}:00:00Z"),
        "answered_at": format!("2026-11-10T{hour:02}:00:10Z"),
        "ended_at": format!("2026-11-10T{hour:02}:02:00Z"),
        "result": "answered", "queue": "line", "price": "1.5000", "currency": "RUB",
        "scenario": {"id": "in", "name": "Inbound", "kind": "operator", "url": "https://kit.example/s/in"},
        "tags": ["t"], "topics": ["x/y"], "campaign": {"id": "cmp", "name": "Campaign"},
        "completion_code": {"id": "cc", "name": "Done"},
    });
    if let Some(op) = operator {
        c["operator"] = json!(op);
        c["group"] = json!(if op == "op2" { "beta" } else { "alpha" });
    }
    c
}

/// The fields of a listed call that `who` sees: the restricted view lacks price and currency.
fn call_fields(who: Who) -> BTreeSet<String> {
    let mut fields = vec![
        "id",
        "external_id",
        "started_at",
        "direction",
        "kind",
        "from",
        "to",
        "operator",
        "group",
        "queue",
        "ring_seconds",
        "talk_seconds",
        "scenario",
        "campaign",
        "result",
        "success",
        "completion_code",
        "attempts",
        "tags",
        "topics",
        "notes",
        "has_recording",
    ];
    if who.full_view() {
        fields.extend(["price", "currency"]);
    }
    fields.into_iter().map(String::from).collect()
}

/// … and of its scenario: the restricted view lacks the link.
fn scenario_fields(who: Who) -> BTreeSet<String> {
    let mut fields = vec!["id", "name", "kind"];
    if who.full_view() {
        fields.push("url");
    }
    fields.into_iter().map(String::from).collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// The calls `who` may see, by spec §1.
fn visible(who: Who, sw: Switches) -> BTreeSet<&'static str> {
    let allowed = |op: Option<&str>| -> bool {
        match who {
            Who::Owner | Who::Admin | Who::Manager => true,
            // Connected to alpha (op1's group); own calls when either switch covers them.
            Who::Supervisor => op == Some("op1") || (op == Some("sup") && (sw.account || sw.alpha)),
            Who::Op1 => op == Some("op1") && (sw.account || sw.alpha),
            // Beta's switch stays off: only the account switch helps op2.
            Who::Op2 => op == Some("op2") && sw.account,
            Who::Feeder | Who::Anonymous => false,
        }
    };
    CALLS
        .iter()
        .filter(|(_, op)| allowed(*op))
        .map(|(ext, _)| *ext)
        .collect()
}

struct World {
    app: TestApp,
    tokens: BTreeMap<Who, String>,
    /// external id → call id
    calls: BTreeMap<&'static str, String>,
    other_call: String,
    other_user: String,
    other_group: String,
    users: BTreeMap<&'static str, String>,
    alpha: String,
    beta: String,
    other_owner: String,
}

async fn world(name: &str) -> World {
    // Sign-in failures of the matrix's rows must not trip the throttle (tested on its own).
    let auth = AuthConfig {
        failures_per_login: 10_000,
        failures_per_address: 10_000,
        ..AuthConfig::default()
    };
    let app = TestApp::start_with(temp_dir(name), auth).await;
    let mut tokens = BTreeMap::new();
    for (who, role) in [
        (Who::Owner, Role::Owner),
        (Who::Admin, Role::Admin),
        (Who::Manager, Role::Manager),
        (Who::Supervisor, Role::Supervisor),
        (Who::Op1, Role::Operator),
        (Who::Op2, Role::Operator),
    ] {
        tokens.insert(who, app.token("default", who.login(), role, TokenScope::Full).await);
    }
    tokens.insert(
        Who::Feeder,
        app.token("default", "feeder", Role::Operator, TokenScope::Ingest).await,
    );
    let owner = tokens[&Who::Owner].clone();
    let alpha = app.set_group(&owner, "alpha", &["op1"], &["sup"], false).await;
    let beta = app.set_group(&owner, "beta", &["op2"], &[], false).await;
    let batch: Vec<Value> = CALLS
        .iter()
        .enumerate()
        .map(|(i, (ext, op))| call(ext, *op, 9 + i as u32))
        .collect();
    app.ingest_ok(&owner, Value::Array(batch)).await;
    let (_, page) = app.get(&owner, "/api/v1/calls?limit=500").await;
    let mut calls = BTreeMap::new();
    for c in page["items"].as_array().unwrap() {
        let ext = CALLS.iter().find(|(e, _)| c["external_id"] == *e).unwrap().0;
        calls.insert(ext, c["id"].as_str().unwrap().to_string());
    }
    // The other account: a user with the same login as op1, a group, a call.
    let other_owner = app.token("acme", "boss", Role::Owner, TokenScope::Full).await;
    app.token("acme", "op1", Role::Operator, TokenScope::Full).await;
    let other_group = app.set_group(&other_owner, "alpha", &["op1"], &[], true).await;
    app.ingest_ok(&other_owner, json!([call("a1", Some("op1"), 9)])).await;
    for (token, ext) in CALLS.iter().map(|(e, _)| (&owner, *e)).chain([(&other_owner, "a1")]) {
        assert_eq!(app.upload(token, ext, "audio/wav", matrix_recording()).await.0, 200);
    }
    let (_, page) = app.get(&other_owner, "/api/v1/calls").await;
    let other_call = page["items"][0]["id"].as_str().unwrap().to_string();
    let other_user = app.user_id(&other_owner, "op1").await;
    let mut users = BTreeMap::new();
    for login in ["owner", "admin", "manager", "sup", "op1", "op2", "feeder"] {
        users.insert(login, app.user_id(&owner, login).await);
    }
    World {
        app,
        tokens,
        calls,
        other_call,
        other_user,
        other_group,
        users,
        alpha,
        beta,
        other_owner,
    }
}

impl World {
    async fn switches(&self, sw: Switches) {
        let owner = &self.tokens[&Who::Owner];
        let body = json!({"call_history_access": sw.account});
        assert_eq!(self.app.send("PUT", owner, "/api/v1/settings", Some(body)).await.0, 200);
        let body = json!({"call_history_access": sw.alpha});
        let path = format!("/api/v1/groups/{}", self.alpha);
        assert_eq!(self.app.send("PUT", owner, &path, Some(body)).await.0, 200);
    }

    /// A GET whose answer the check reads itself (bytes, headers).
    async fn request_raw(&self, who: Who, path: &str) -> reqwest::Response {
        let mut req = self.app.http.get(format!("{}{path}", self.app.base));
        if let Some(t) = self.tokens.get(&who) {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn request(&self, who: Who, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        match self.tokens.get(&who) {
            Some(token) => self.app.send(method, token, path, body).await,
            None => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut req = self.app.http.request(method, format!("{}{path}", self.app.base));
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
        }
    }

    /// Ids the rows' `{id}` stands for, per check and principal.
    fn target_id(&self, check: Check, who: Who) -> String {
        let (target, kind) = match check {
            Check::CallDetail(t) | Check::Recording(t, _) | Check::LogLink(t) | Check::RevokeLogLinks(t) => (t, "call"),
            Check::User(t) | Check::UpdateUser(t) => (t, "user"),
            Check::Group(t) | Check::UpdateGroup(t) => (t, "group"),
            _ => return String::new(),
        };
        match (kind, target) {
            ("call", Target::InScope) => self.calls["a1"].clone(),
            ("call", Target::OutOfScope) => self.calls["b1"].clone(),
            ("call", Target::OtherAccount) => self.other_call.clone(),
            // In scope: the principal themself for restricted roles, op2 for the full roles.
            ("user", Target::InScope) if who.full_view() => self.users["op2"].clone(),
            ("user", Target::InScope) => self.users.get(who.login()).unwrap_or(&self.users["op2"]).clone(),
            ("user", Target::OutOfScope) if who == Who::Op2 => self.users["op1"].clone(),
            ("user", Target::OutOfScope) => self.users["op2"].clone(),
            ("user", Target::OtherAccount) => self.other_user.clone(),
            ("group", Target::InScope) if who == Who::Op2 => self.beta.clone(),
            ("group", Target::InScope) => self.alpha.clone(),
            ("group", Target::OutOfScope) if who == Who::Op2 => self.alpha.clone(),
            ("group", Target::OutOfScope) => self.beta.clone(),
            ("group", Target::OtherAccount) => self.other_group.clone(),
            _ => unreachable!(),
        }
    }

    /// Every value of `column` in `table` for the first account, read from the database itself
    /// (not through the API under test).
    /// A finished export job of the owner, made for this check (so a cancel by the owner in an
    /// earlier row does not matter).
    async fn owner_job(&self) -> String {
        let token = &self.tokens[&Who::Owner];
        self.app.finished_export(token).await
    }

    /// A QM export job of the default account (`false`) or of the other one, made in the store
    /// (the world's integration is not active, so none could be asked for).
    async fn qm_job(&self, other: bool) -> String {
        self.app
            .store
            .write(move |conn, _| {
                let name = if other { "acme" } else { "default" };
                let account = calltrail::store::auth::account_by_name(conn, name)?.unwrap();
                let user: i64 =
                    conn.query_row("SELECT MIN(id) FROM users WHERE account_id = ?", [account.id.0], |r| {
                        r.get(0)
                    })?;
                let user = calltrail::domain::UserId(user);
                calltrail::store::qm::create_export(conn, account.id, user, None, Some(&[]), None, 0)
            })
            .await
            .unwrap()
            .to_string()
    }

    async fn other_account_job(&self) -> String {
        self.app.finished_export(&self.other_owner).await
    }

    async fn name_of(&self, login: &'static str) -> String {
        self.app
            .store
            .read(move |conn| Ok(conn.query_row("SELECT name FROM users WHERE login = ? AND account_id = (SELECT id FROM accounts WHERE name = 'default')", [login], |r| r.get(0))?))
            .await
            .unwrap()
    }

    async fn all_of(&self, table: &'static str, column: &'static str) -> BTreeSet<String> {
        self.app
            .store
            .read(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {column} FROM {table} WHERE account_id = (SELECT id FROM accounts WHERE name = 'default')"
                ))?;
                let values = stmt.query_map((), |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(values)
            })
            .await
            .unwrap()
    }
}

fn names(body: &Value, field: &str) -> BTreeSet<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {body}"))
        .iter()
        .map(|i| i[field].as_str().unwrap().to_string())
        .collect()
}

/// The status every principal gets when a check is not about them: 401 without credentials,
/// 403 for an ingest token.
/// Owners, administrators and managers hand calls to the QM system.
fn qm_exporter(who: Who) -> bool {
    matches!(who, Who::Owner | Who::Admin | Who::Manager)
}

fn gate(who: Who) -> Option<u16> {
    match who {
        Who::Anonymous => Some(401),
        Who::Feeder => Some(403),
        _ => None,
    }
}

/// The status of a request about `target` by `who`, where `allowed` says whether the role may
/// make it at all and `ok` is the success status: another account's ids and ids outside a
/// restricted scope are 404.
fn expected_status(who: Who, allowed: bool, target: Target, ok: u16) -> u16 {
    match (gate(who), target) {
        (Some(s), _) => s,
        (None, _) if !allowed => 403,
        (None, Target::OtherAccount) => 404,
        (None, Target::OutOfScope) if !who.full_view() => 404,
        (None, _) => ok,
    }
}

/// A directory list shows `who` exactly `expected` (by `field`), or refuses as `gate` says.
async fn assert_listed(w: &World, who: Who, path: &str, field: &str, expected: BTreeSet<String>, ctx: &str) {
    let (status, body) = w.request(who, "GET", path, None).await;
    assert_eq!(status, gate(who).unwrap_or(200), "{ctx}");
    if status == 200 {
        assert_eq!(names(&body, field), expected, "{ctx}");
    }
}

/// Runs one row for one principal and asserts the outcome.
async fn check_row(w: &World, r: &Row, who: Who, sw: Switches, n: &mut u32) {
    let id = w.target_id(r.check, who);
    let path = r.path.replace("{id}", &id);
    let ctx = format!("{} {} as {who:?} with {sw:?}", r.method, path);
    let administrator = matches!(who, Who::Owner | Who::Admin);
    match r.check {
        Check::Public(status) => {
            assert_eq!(w.request(who, r.method, &path, None).await.0, status, "{ctx}");
        }
        Check::Calls(query) => {
            let path = format!("{path}?limit=500&{query}");
            let (status, body) = w.request(who, "GET", &path, None).await;
            if let Some(s) = gate(who) {
                assert_eq!(status, s, "{ctx}");
                return;
            }
            assert_eq!(status, 200, "{ctx}: {body}");
            let seen: BTreeSet<String> = names(&body, "external_id");
            let expected: BTreeSet<String> = visible(who, sw).into_iter().map(String::from).collect();
            assert_eq!(seen, expected, "{ctx} {query}");
            assert_eq!(body["total"], expected.len(), "{ctx} {query}: total");
            for item in body["items"].as_array().unwrap() {
                assert_eq!(keys(item), call_fields(who), "{ctx}: the fields of a call");
                assert_eq!(
                    keys(&item["scenario"]),
                    scenario_fields(who),
                    "{ctx}: the fields of its scenario"
                );
            }
            // Asking for an operator outside the scope finds nothing, and counts nothing.
            let op2 = &w.users["op2"];
            let (_, body) = w.request(who, "GET", &format!("{path}&operator={op2}"), None).await;
            let expected_op2 = usize::from(visible(who, sw).contains("b1"));
            assert_eq!(body["total"], expected_op2, "{ctx}: operator=op2 total");
        }
        Check::CallDetail(target) => {
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(
                status,
                expected_status(who, who.full_view(), target, 200),
                "{ctx}: {body}"
            );
            if status == 200 {
                assert_eq!(body["price"], "1.5000", "{ctx}");
            }
        }
        Check::Live => {
            let mut req = w.app.http.get(format!("{}{path}", w.app.base));
            if let Some(t) = w.tokens.get(&who) {
                req = req.bearer_auth(t);
            }
            let status = req.send().await.unwrap().status().as_u16();
            assert_eq!(status, gate(who).unwrap_or(200), "{ctx}");
        }
        Check::Ingest => {
            // Re-sending a stored call changes nothing, so the row can run for everyone.
            let body = json!([call("n1", None, 12)]);
            let (status, answer) = w.request(who, "POST", &path, Some(body)).await;
            let expected = match who {
                Who::Anonymous => 401,
                Who::Owner | Who::Admin | Who::Feeder => 200,
                _ => 403,
            };
            assert_eq!(status, expected, "{ctx}: {answer}");
            if status == 200 {
                assert_eq!(answer["unchanged"], 1, "{ctx}");
            }
        }
        Check::DirectoryList => {
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, gate(who).unwrap_or(200), "{ctx}");
            if status == 200 {
                assert!(!body["items"].as_array().unwrap().is_empty(), "{ctx}");
                for item in body["items"].as_array().unwrap() {
                    assert_eq!(
                        item.get("url").is_some(),
                        who.full_view() && r.path.ends_with("scenarios"),
                        "{ctx}"
                    );
                }
            }
        }
        Check::Users => {
            let expected: BTreeSet<String> = match who {
                Who::Supervisor => ["sup", "op1"].map(String::from).into(),
                w2 if !w2.full_view() => [w2.login().to_string()].into(),
                _ => w.all_of("users", "login").await,
            };
            assert_listed(w, who, &path, "login", expected, &ctx).await;
        }
        Check::User(target) => {
            // The supervisor sees op1 (a member of alpha), not op2.
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, expected_status(who, true, target, 200), "{ctx}: {body}");
            if status == 200 {
                assert_eq!(body["id"], id.as_str(), "{ctx}");
            }
        }
        Check::CreateUser => {
            *n += 1;
            let body = json!({"login": format!("new{n}"), "role": "operator", "password": "long enough"});
            let (status, answer) = w.request(who, "POST", &path, Some(body)).await;
            let expected = gate(who).unwrap_or(if administrator { 201 } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::UpdateUser(target) => {
            let body = json!({"name": "Same Name"});
            let (status, answer) = w.request(who, "PUT", &path, Some(body)).await;
            assert_eq!(
                status,
                expected_status(who, administrator, target, 200),
                "{ctx}: {answer}"
            );
        }
        Check::Groups => {
            let expected: BTreeSet<String> = match who {
                Who::Supervisor | Who::Op1 => ["alpha".to_string()].into(),
                Who::Op2 => ["beta".to_string()].into(),
                _ => w.all_of("groups", "name").await,
            };
            assert_listed(w, who, &path, "name", expected, &ctx).await;
        }
        Check::Group(target) => {
            let (status, _) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, expected_status(who, true, target, 200), "{ctx}");
        }
        Check::CreateGroup => {
            *n += 1;
            let body = json!({"name": format!("team {n}")});
            let (status, answer) = w.request(who, "POST", &path, Some(body)).await;
            let expected = gate(who).unwrap_or(if who.full_view() { 201 } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::UpdateGroup(target) => {
            // Setting the switch it already has: allowed or not, the other rows see no change.
            let body = json!({"call_history_access": sw.alpha});
            let (status, answer) = w.request(who, "PUT", &path, Some(body)).await;
            assert_eq!(
                status,
                expected_status(who, who.full_view(), target, 200),
                "{ctx}: {answer}"
            );
        }
        Check::Settings => {
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, gate(who).unwrap_or(200), "{ctx}");
            if status == 200 {
                assert_eq!(body["call_history_access"], sw.account, "{ctx}");
                assert_eq!(body["account"], "default", "{ctx}");
            }
        }
        Check::UpdateSettings => {
            let body = json!({"call_history_access": sw.account});
            let (status, _) = w.request(who, "PUT", &path, Some(body)).await;
            assert_eq!(
                status,
                gate(who).unwrap_or(if administrator { 200 } else { 403 }),
                "{ctx}"
            );
        }
        Check::Audit => {
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(
                status,
                gate(who).unwrap_or(if administrator { 200 } else { 403 }),
                "{ctx}"
            );
            if status == 200 {
                // The other account's changes never show here.
                let actors: BTreeSet<String> = body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|e| e["actor_login"].as_str().map(String::from))
                    .collect();
                assert!(!actors.contains("boss"), "{ctx}: {actors:?}");
                assert!(actors.contains("owner"), "{ctx}: {actors:?}");
            }
        }
        Check::Me => {
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, if who == Who::Anonymous { 401 } else { 200 }, "{ctx}");
            if status == 200 {
                assert_eq!(body["user"]["login"], who.login(), "{ctx}");
                let reads = who.reader();
                assert_eq!(
                    body["permissions"]["call_history"],
                    reads && !visible(who, sw).is_empty(),
                    "{ctx}"
                );
                assert_eq!(body["permissions"]["sees_price"], reads && who.full_view(), "{ctx}");
                assert_eq!(body["permissions"]["manage_users"], administrator, "{ctx}");
                assert_eq!(body["permissions"]["manage_groups"], who.full_view(), "{ctx}");
            }
        }
        Check::Preferences => {
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, gate(who).unwrap_or(200), "{ctx}");
            if status == 200 {
                // Never chosen: every column the role may see.
                let columns = body["columns"].as_array().unwrap();
                assert_eq!(columns.len(), if who.full_view() { 18 } else { 17 }, "{ctx}");
                assert_eq!(columns.contains(&json!("price")), who.full_view(), "{ctx}");
            }
        }
        Check::UpdatePreferences => {
            // Price is a column only the full roles may choose; a choice is one's own.
            let (status, body) = w
                .request(who, "PUT", &path, Some(json!({"columns": ["time", "price"]})))
                .await;
            let allowed = gate(who).unwrap_or(if who.full_view() { 200 } else { 400 });
            assert_eq!(status, allowed, "{ctx}: {body}");
            if status == 400 {
                assert_eq!(body["error"]["field"], "columns", "{ctx}");
            }
            let (status, body) = w.request(who, "PUT", &path, Some(json!({"columns": null}))).await;
            assert_eq!(status, gate(who).unwrap_or(200), "{ctx}: {body}");
        }
        Check::Export => {
            let url = format!("{}{path}?format=csv&lang=en&tz=UTC&columns=time,operator", w.app.base);
            let mut req = w.app.http.get(&url);
            if let Some(t) = w.tokens.get(&who) {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            if let Some(s) = gate(who) {
                assert_eq!(status, s, "{ctx}");
                return;
            }
            assert_eq!(status, 200, "{ctx}: {text}");
            // Exactly the calls the viewer may see: one line each, with their operator.
            let lines: Vec<&str> = text.trim_start_matches('\u{feff}').trim_end().split("\r\n").collect();
            assert_eq!(lines[0], "Time (UTC),Operator", "{ctx}");
            let mut seen: Vec<String> = lines[1..]
                .iter()
                .map(|l| l.split(',').nth(1).unwrap().to_string())
                .collect();
            let mut expected: Vec<String> = Vec::new();
            for ext in visible(who, sw) {
                let login = CALLS.iter().find(|(e, _)| *e == ext).unwrap().1;
                expected.push(match login {
                    Some(l) => w.name_of(l).await,
                    None => String::new(),
                });
            }
            seen.sort();
            expected.sort();
            assert_eq!(seen, expected, "{ctx}");
            // A restricted role cannot ask for the Price column.
            let (status, body) = w
                .request(who, "GET", &format!("{path}?format=csv&columns=price"), None)
                .await;
            if who.full_view() {
                assert_eq!(status, 200, "{ctx}");
            } else {
                assert_eq!(
                    (status, body["error"]["field"].as_str()),
                    (400, Some("columns")),
                    "{ctx}"
                );
            }
        }
        Check::StartExport => {
            let body =
                json!({"format": "csv", "lang": "en", "columns": ["time", "operator"], "filters": {"tz": "UTC"}});
            let (status, job) = w.request(who, "POST", &path, Some(body)).await;
            if let Some(s) = gate(who) {
                assert_eq!(status, s, "{ctx}");
                return;
            }
            assert_eq!(status, 202, "{ctx}: {job}");
            let token = &w.tokens[&who];
            let done = w.app.finished_job(token, job["id"].as_str().unwrap()).await;
            assert_eq!(done["state"], "done", "{ctx}: {done}");
            let visible = visible(who, sw).len();
            assert_eq!(done["rows_total"], visible, "{ctx}");
            let file = w.app.download(token, done["file_url"].as_str().unwrap()).await;
            assert_eq!(file.0, 200, "{ctx}");
            assert_eq!(
                file.1.trim_end().split("\r\n").count(),
                1 + visible,
                "{ctx}: {}",
                file.1
            );
            // A restricted role cannot ask for Price in a job either.
            let body = json!({"format": "csv", "columns": ["price"]});
            let (status, answer) = w.request(who, "POST", &path, Some(body)).await;
            let expected = if who.full_view() { 202 } else { 400 };
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::Exports => {
            let owner_job = w.owner_job().await;
            let (status, body) = w.request(who, "GET", &path, None).await;
            assert_eq!(status, gate(who).unwrap_or(200), "{ctx}");
            if status == 200 {
                // Only one's own jobs: the owner's latest is listed to the owner alone.
                let ids: BTreeSet<String> = names(&body, "id");
                assert_eq!(ids.contains(&owner_job), who == Who::Owner, "{ctx}: {ids:?}");
                assert!(!ids.is_empty(), "{ctx}: the job the StartExport row made");
            }
        }
        Check::ExportJob | Check::ExportFile | Check::CancelExport => {
            let suffix = match r.check {
                Check::ExportFile => "/file",
                _ => "",
            };
            // The owner's job and the other account's: nobody else's to see, fetch or cancel.
            for (job, mine) in [
                (w.owner_job().await, who == Who::Owner),
                (w.other_account_job().await, false),
            ] {
                let path = format!("/api/v1/exports/{job}{suffix}");
                let (status, body) = w.request(who, r.method, &path, None).await;
                let expected = gate(who).unwrap_or(if mine { 200 } else { 404 });
                assert_eq!(status, expected, "{ctx}: {path}: {body}");
            }
        }
        Check::SignIn => {
            // Whatever credential comes along, a wrong password is a wrong password.
            let body = json!({"login": "nobody-here", "password": "wrong password"});
            let (status, _) = w.request(who, "POST", &path, Some(body)).await;
            assert_eq!(status, 401, "{ctx}");
        }
        Check::Recording(target, download) => {
            let path = if download { format!("{path}?download=1") } else { path };
            let r = w.request_raw(who, &path).await;
            let status = r.status().as_u16();
            // Restricted roles may play here but not download; out of their scope it is 404.
            let allowed = who.full_view() || !download;
            let ext = if matches!(target, Target::InScope) { "a1" } else { "b1" };
            let expected = match (gate(who), target) {
                (Some(s), _) => s,
                (None, _) if !allowed => 403,
                (None, Target::OtherAccount) => 404,
                (None, _) if who.full_view() || visible(who, sw).contains(ext) => 200,
                (None, _) => 404,
            };
            assert_eq!(status, expected, "{ctx}");
            if status == 200 {
                assert_eq!(r.bytes().await.unwrap().to_vec(), matrix_recording(), "{ctx}");
            }
        }
        Check::UploadRecording => {
            let path = path.replace("{external_id}", "n1");
            let mut req = w
                .app
                .http
                .put(format!("{}{path}", w.app.base))
                .header("content-type", "audio/wav");
            if let Some(t) = w.tokens.get(&who) {
                req = req.bearer_auth(t);
            }
            let status = req.body(matrix_recording()).send().await.unwrap().status().as_u16();
            let expected = match who {
                Who::Anonymous => 401,
                Who::Owner | Who::Admin | Who::Feeder => 200,
                _ => 403,
            };
            assert_eq!(status, expected, "{ctx}");
        }
        Check::LogLink(target) | Check::RevokeLogLinks(target) => {
            let ok = if r.method == "POST" { 201 } else { 200 };
            let (status, body) = w.request(who, r.method, &path, None).await;
            assert_eq!(
                status,
                expected_status(who, who.full_view(), target, ok),
                "{ctx}: {body}"
            );
            if status == 201 {
                assert!(body["url"].as_str().unwrap().contains("/log/lg_"), "{ctx}: {body}");
            }
        }
        Check::QmSettings | Check::UpdateQmSettings => {
            let body = (r.method == "PUT").then(|| json!({"language_code": "ru"}));
            let (status, answer) = w.request(who, r.method, &path, body).await;
            let expected = gate(who).unwrap_or(if administrator { 200 } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
            if status == 200 {
                assert_eq!(
                    (&answer["language_code"], &answer["active"]),
                    (&json!("ru"), &json!(false)),
                    "{ctx}"
                );
            }
        }
        Check::IngestFreeswitch => {
            // A b-leg whose a-leg never comes: it waits, and the calls everyone sees stay as they are.
            let leg = json!({
                "channel_data": {"direction": "outbound"},
                "variables": {"uuid": "fs-b", "originating_leg_uuid": "fs-a", "answer_uepoch": "1764000000000000"},
                "callflow": {"caller_profile": {"caller_id_number": "+74951112233", "destination_number": "1001"}}
            });
            let (status, answer) = w.request(who, "POST", &path, Some(leg)).await;
            let expected = match who {
                Who::Anonymous => 401,
                Who::Owner | Who::Admin | Who::Feeder => 200,
                _ => 403,
            };
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::IngestKit => {
            let settings = json!({"domain": "default", "salt": "matrix-salt"});
            let (status, _) = w
                .request(Who::Owner, "PUT", "/api/v1/integrations/voximplant-kit", Some(settings))
                .await;
            assert_eq!(status, 200, "{ctx}");
            let hash = format!("{:x}", md5::Md5::digest(b"matrix-saltdefaultwrap_up_code_set"));
            let body = json!({"callbacks": [{"hash": hash, "type": "wrap_up_code_set",
                "wrap_up_code_set": {"call_id": "kit-matrix", "wrap_up_code": {"id": 1, "title": "ok"}}}]});
            let (status, answer) = w.request(who, "POST", &path, Some(body)).await;
            let expected = match who {
                Who::Anonymous => 401,
                Who::Owner | Who::Admin | Who::Feeder => 200,
                _ => 403,
            };
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::AdminOnly => {
            let body = match r.path {
                "/api/v1/integrations/pbx" => Some(json!({"extension_max_digits": 4})),
                _ => Some(json!({"domain": "default", "salt": "matrix-salt"})),
            }
            .filter(|_| r.method == "PUT");
            let (status, answer) = w.request(who, r.method, &path, body).await;
            let expected = gate(who).unwrap_or(if administrator { 200 } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::Rejection => {
            // A refusal of this account (a batch with a bad record), and one of the other's.
            let (status, _) = w
                .request(
                    Who::Owner,
                    "POST",
                    "/api/v1/ingest/calls",
                    Some(json!([{"external_id": "r", "kind": "sideways"}])),
                )
                .await;
            assert_eq!(status, 400, "{ctx}");
            let (_, health) = w.request(Who::Owner, "GET", "/api/v1/ingest/health", None).await;
            let id = health["rejections"][0]["id"].as_str().unwrap().to_string();
            let (status, answer) = w.request(who, r.method, &r.path.replace("{id}", &id), None).await;
            // A replay of what was not fixed is refused again, naming the field.
            let ok = if r.method == "POST" { 400 } else { 200 };
            let expected = gate(who).unwrap_or(if administrator { ok } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::CompatSearch => {
            let (status, body) = w
                .request(who, r.method, &format!("{path}?domain=default&limit=500"), None)
                .await;
            if let Some(s) = gate(who) {
                assert_eq!((status, &body["success"]), (s, &json!(false)), "{ctx}: {body}");
                return;
            }
            assert_eq!(status, 200, "{ctx}: {body}");
            let (_, ours) = w.request(who, "GET", "/api/v1/calls?limit=500", None).await;
            let seen: BTreeSet<String> = body["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["session_id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(seen, names(&ours, "external_id"), "{ctx}");
            let expected: BTreeSet<String> = visible(who, sw).into_iter().map(String::from).collect();
            assert_eq!(seen, expected, "{ctx}");
            for item in body["result"].as_array().unwrap() {
                // No price for the restricted view, as in ours.
                assert_eq!(item["call_cost"].is_null(), !who.full_view(), "{ctx}: {item}");
            }
        }
        Check::CompatReport => {
            let query = if r.path.ends_with("exportCallsHistoryReport") {
                "domain=default"
            } else {
                "domain=default&report_id=999999"
            };
            let (status, body) = w.request(who, r.method, &format!("{path}?{query}"), None).await;
            let ok = if r.path.ends_with("exportCallsHistoryReport") {
                200
            } else {
                404
            };
            assert_eq!(status, gate(who).unwrap_or(ok), "{ctx}: {body}");
        }
        Check::QmConnect => {
            // Administrators are told what is missing; nobody else gets that far.
            let (status, answer) = w.request(who, r.method, &path, None).await;
            let expected = gate(who).unwrap_or(if administrator { 400 } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::StartQmExport | Check::QmExports => {
            let body = (r.method == "POST").then(|| json!({"filters": {}}));
            let (status, answer) = w.request(who, r.method, &path, body).await;
            // Starting one waits for an active integration (409); listing works.
            let ok = if r.method == "POST" { 409 } else { 200 };
            let expected = gate(who).unwrap_or(if qm_exporter(who) { ok } else { 403 });
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::QmExport(target) => {
            let job = w.qm_job(matches!(target, Target::OtherAccount)).await;
            let path = r.path.replace("{id}", &job);
            let (status, answer) = w.request(who, r.method, &path, None).await;
            let expected = match (gate(who), target) {
                (Some(s), _) => s,
                (None, _) if !qm_exporter(who) => 403,
                (None, Target::OtherAccount) => 404,
                // A re-run of the account's own job needs an active integration.
                (None, _) if r.method == "POST" => 409,
                (None, _) => 200,
            };
            assert_eq!(status, expected, "{ctx}: {answer}");
        }
        Check::SessionRead | Check::SignOut => {
            // Tokens are not sessions: there is no session to read or end.
            let (status, body) = w.request(who, r.method, &path, None).await;
            let expected = if who == Who::Anonymous { 401 } else { 400 };
            assert_eq!(status, expected, "{ctx}: {body}");
        }
    }
}

#[tokio::test]
async fn permission_matrix() {
    let w = world("matrix").await;
    // Every documented operation has a row, and every row names a documented operation.
    let (_, doc) = w.app.get("", "/api/v1/openapi.json").await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let tested: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(
        documented, tested,
        "the matrix and the OpenAPI document list the same operations"
    );

    let mut n = 0;
    for (account, alpha) in [(false, false), (true, false), (false, true), (true, true)] {
        let sw = Switches { account, alpha };
        w.switches(sw).await;
        for r in MATRIX {
            for who in EVERYONE {
                check_row(&w, r, who, sw, &mut n).await;
            }
        }
    }
    w.app.stop().await;
}

#[tokio::test]
async fn live_events_respect_scope() {
    let w = world("matrix-live").await;
    let owner = w.tokens[&Who::Owner].clone();
    for (round, (account, alpha)) in [(false, false), (true, true)].into_iter().enumerate() {
        let sw = Switches { account, alpha };
        w.switches(sw).await;
        let mut streams = vec![];
        for who in [Who::Owner, Who::Manager, Who::Supervisor, Who::Op1, Who::Op2] {
            streams.push((who, w.app.live(&w.tokens[&who], "").await));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The same calls again with new ids: a2, b2, s2, n2 (round 0) or a3… (round 1).
        let suffix = (round + 2).to_string();
        let batch: Vec<Value> = CALLS
            .iter()
            .enumerate()
            .map(|(i, (ext, op))| call(&format!("{}{suffix}", &ext[..1]), *op, 13 + i as u32))
            .collect();
        w.app
            .ingest_ok(&w.other_owner, json!([call("zz", Some("op1"), 9)]))
            .await;
        w.app.ingest_ok(&owner, Value::Array(batch)).await;
        for (who, stream) in streams.iter_mut() {
            let expected: BTreeSet<String> = visible(*who, sw)
                .into_iter()
                .map(|e| format!("{}{suffix}", &e[..1]))
                .collect();
            let seen = collect_live(stream, expected.len(), Duration::from_millis(400)).await;
            let ids: BTreeSet<String> = seen
                .iter()
                .map(|c| c["external_id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ids, expected, "{who:?} with {sw:?}");
            for c in &seen {
                assert_eq!(keys(c), call_fields(*who), "{who:?}: the fields of a live event");
                assert_eq!(keys(&c["scenario"]), scenario_fields(*who), "{who:?}: its scenario");
            }
        }
    }
    w.app.stop().await;
}

#[tokio::test]
async fn a_group_change_applies_at_once_to_lists_counts_and_streams() {
    let w = world("group-move").await;
    let owner = w.tokens[&Who::Owner].clone();
    let sup = w.tokens[&Who::Supervisor].clone();
    let ids = |body: &Value| names(body, "external_id");
    let (_, page) = w
        .app
        .get(&sup, "/api/v1/calls?tz=UTC&from=2026-11-01&to=2026-12-01")
        .await;
    assert_eq!(
        (ids(&page), page["total"].clone()),
        (["a1".to_string()].into(), json!(1))
    );
    let mut stream = w.app.live(&sup, "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // op1 moves from alpha to beta, op2 from beta to alpha.
    w.app.set_group(&owner, "alpha", &["op2"], &["sup"], false).await;
    w.app.set_group(&owner, "beta", &["op1"], &[], false).await;
    let (_, page) = w
        .app
        .get(&sup, "/api/v1/calls?tz=UTC&from=2026-11-01&to=2026-12-01")
        .await;
    assert_eq!(
        (ids(&page), page["total"].clone()),
        (["b1".to_string()].into(), json!(1))
    );
    let a1 = &w.calls["a1"];
    let b1 = &w.calls["b1"];
    assert_eq!(w.app.get(&owner, &format!("/api/v1/calls/{a1}")).await.0, 200);
    let (_, me) = w.app.get(&sup, "/api/v1/users").await;
    assert_eq!(names(&me, "login"), ["op2".to_string(), "sup".to_string()].into());
    // An update to op1's call is not sent to the supervisor any more; one to op2's call is.
    w.app
        .ingest_ok(&owner, json!([{"external_id": "a1", "tags": ["moved"]}]))
        .await;
    w.app
        .ingest_ok(&owner, json!([{"external_id": "b1", "tags": ["moved"]}]))
        .await;
    let seen = collect_live(&mut stream, 1, Duration::from_millis(400)).await;
    let seen: Vec<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(seen, vec![b1.as_str()]);

    // Disconnecting the supervisor from every group leaves nothing, counts included.
    w.app.set_group(&owner, "alpha", &["op2"], &[], false).await;
    let op2 = format!("operator={}", w.users["op2"]);
    for q in [
        "",
        "tz=UTC&from=2026-11-01&to=2026-12-01",
        "result=answered",
        op2.as_str(),
    ] {
        let (status, page) = w.app.get(&sup, &format!("/api/v1/calls?{q}")).await;
        assert_eq!((status, page["total"].clone()), (200, json!(0)), "{q}");
    }
    w.app.stop().await;
}

#[tokio::test]
async fn a_second_account_sees_nothing_of_the_first() {
    let w = world("two-accounts").await;
    let boss = &w.other_owner;
    let (_, page) = w.app.get(boss, "/api/v1/calls?limit=500").await;
    assert_eq!(
        (names(&page, "external_id"), page["total"].clone()),
        (["a1".to_string()].into(), json!(1))
    );
    for id in w.calls.values() {
        assert_eq!(w.app.get(boss, &format!("/api/v1/calls/{id}")).await.0, 404);
    }
    for id in w.users.values() {
        assert_eq!(w.app.get(boss, &format!("/api/v1/users/{id}")).await.0, 404);
        let body = json!({"blocked": true});
        assert_eq!(
            w.app
                .send("PUT", boss, &format!("/api/v1/users/{id}"), Some(body))
                .await
                .0,
            404
        );
    }
    for id in [&w.alpha, &w.beta] {
        assert_eq!(w.app.get(boss, &format!("/api/v1/groups/{id}")).await.0, 404);
    }
    // Its group cannot take the first account's users as members or supervisors.
    let path = format!("/api/v1/groups/{}", w.other_group);
    let (status, err) = w
        .app
        .send("PUT", boss, &path, Some(json!({"members": [w.users["op2"]]})))
        .await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("members")));
    let (_, users) = w.app.get(boss, "/api/v1/users").await;
    assert_eq!(names(&users, "login"), ["boss".to_string(), "op1".to_string()].into());
    let (_, groups) = w.app.get(boss, "/api/v1/groups").await;
    assert_eq!(names(&groups, "name"), ["alpha".to_string()].into());
    // The first account's users were not blocked by any of that.
    let (status, _) = w.app.get(&w.tokens[&Who::Op2], "/api/v1/me").await;
    assert_eq!(status, 200);
    w.app.stop().await;
}

#[tokio::test]
async fn a_supervisor_of_forty_thousand_operators_searches_normally() {
    let w = world("big-scope").await;
    let owner = w.tokens[&Who::Owner].clone();
    let sup = w.tokens[&Who::Supervisor].clone();
    // More members than SQLite takes parameters in one statement.
    let alpha: i64 = w.alpha.parse().unwrap();
    w.app
        .store
        .write(move |conn, _| {
            conn.execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000) \
                 INSERT INTO users (account_id, login, name, role, created_at) \
                 SELECT 1, 'bulk' || i, 'Bulk ' || i, 'operator', 0 FROM n; \
                 INSERT INTO group_members (group_id, user_id) SELECT {alpha}, id FROM users WHERE login LIKE 'bulk%';"
            ))?;
            Ok(())
        })
        .await
        .unwrap();
    w.app
        .ingest_ok(&owner, json!([call("bulk-call", Some("bulk39999"), 15)]))
        .await;
    for q in [
        "",
        "tz=UTC&from=2026-11-01&to=2026-12-01",
        "tz=UTC&from=2026-11-10T08:30:00Z&to=2026-11-11T00:00:00Z",
    ] {
        let (status, page) = w.app.get(&sup, &format!("/api/v1/calls?{q}")).await;
        assert_eq!(status, 200, "{q}: {page}");
        assert_eq!(
            names(&page, "external_id"),
            ["a1".to_string(), "bulk-call".to_string()].into(),
            "{q}"
        );
        assert_eq!(page["total"], 2, "{q}");
    }
    let (status, users) = w.app.get(&sup, "/api/v1/users").await;
    assert_eq!((status, users["items"].as_array().unwrap().len()), (200, 40_002));
    w.app.stop().await;
}
