//! Live updates between instances sharing a PostgreSQL database: each instance `NOTIFY`s the ids
//! its writes changed on one channel and `LISTEN`s for the others'. A notification carries the
//! sending instance (which ignores its own), the account and the ids — never call data: each
//! subscriber re-reads the calls through its own scope, as for local changes.
//!
//! Both sides run on threads of their own with the synchronous client, reconnecting after a
//! broken connection; a listener that was cut off tells its subscribers to search again.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::{broadcast, watch};

use super::{CallsChanged, LiveEvent, Wake, Wakes};
use crate::domain::AccountId;

const CHANNEL: &str = "calltrail_live";
/// PostgreSQL refuses payloads of 8000 bytes or more; ids are split across notifications.
const MAX_PAYLOAD: usize = 7_000;
/// How often the threads look whether the server is stopping, and wait before reconnecting.
const TICK: Duration = Duration::from_millis(500);

/// What one instance tells the others.
enum Message {
    Changed(AccountId, Arc<Vec<i64>>),
    Wake(Wake),
}

/// The sending side, held by the hub.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Message>,
}

impl Outbox {
    pub fn send(&self, account: AccountId, ids: Arc<Vec<i64>>) {
        // The notifier thread is gone only when the server stops.
        let _ = self.tx.send(Message::Changed(account, ids));
    }

    pub fn wake(&self, what: Wake) {
        let _ = self.tx.send(Message::Wake(what));
    }
}

pub fn start(
    url: &str,
    instance: Arc<str>,
    local: broadcast::Sender<LiveEvent>,
    wakes: Wakes,
    closing: watch::Receiver<bool>,
) -> Outbox {
    let (tx, rx) = mpsc::channel();
    let (u, me, c) = (url.to_string(), instance.clone(), closing.clone());
    let spawned = std::thread::Builder::new()
        .name("calltrail-notify".into())
        .spawn(move || notify_loop(&u, &me, rx, c));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the live-update sender");
    }
    let u = url.to_string();
    let spawned = std::thread::Builder::new()
        .name("calltrail-listen".into())
        .spawn(move || listen_loop(&u, &instance, local, wakes, closing));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the live-update listener");
    }
    Outbox { tx }
}

/// `"{instance} {account} {id},{id},…"`, split so that no payload is too long.
fn payloads(instance: &str, account: AccountId, ids: &[i64]) -> Vec<String> {
    let head = format!("{instance} {}", account.0);
    let mut out = vec![];
    let mut current = String::new();
    for id in ids {
        let id = id.to_string();
        if !current.is_empty() && head.len() + 1 + current.len() + 1 + id.len() > MAX_PAYLOAD {
            out.push(format!("{head} {current}"));
            current.clear();
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&id);
    }
    if !current.is_empty() {
        out.push(format!("{head} {current}"));
    }
    out
}

/// What another instance said.
#[derive(Debug, PartialEq)]
enum Heard {
    Changed(CallsChanged),
    Wake(Wake),
}

/// `"{instance} wake {worker}"`.
fn wake_payload(instance: &str, what: Wake) -> String {
    format!("{instance} wake {}", what.code())
}

/// Another instance's payload; `None` for this instance's own or a payload that is not
/// calltrail's.
fn parse(payload: &str, me: &str) -> Option<Heard> {
    let mut parts = payload.splitn(3, ' ');
    let (from, second, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if from == me {
        return None;
    }
    if second == "wake" {
        return Wake::parse(rest).map(Heard::Wake);
    }
    let account = AccountId(second.parse().ok()?);
    let ids = rest.split(',').map(str::parse).collect::<Result<Vec<i64>, _>>().ok()?;
    Some(Heard::Changed(CallsChanged {
        account,
        ids: Arc::new(ids),
    }))
}

fn connect(url: &str) -> Option<postgres::Client> {
    match postgres::Client::connect(url, postgres::NoTls) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "live updates: cannot reach the database; trying again");
            None
        }
    }
}

fn notify_loop(url: &str, me: &str, rx: mpsc::Receiver<Message>, closing: watch::Receiver<bool>) {
    let mut client: Option<postgres::Client> = None;
    loop {
        let sent = match rx.recv_timeout(TICK) {
            Ok(Message::Changed(account, ids)) => payloads(me, account, &ids),
            Ok(Message::Wake(what)) => vec![wake_payload(me, what)],
            Err(mpsc::RecvTimeoutError::Timeout) if !*closing.borrow() => continue,
            Err(_) => return,
        };
        for payload in sent {
            // One retry on a fresh connection: a restarted database should not lose the change.
            for _ in 0..2 {
                if client.is_none() {
                    client = connect(url);
                }
                let Some(c) = client.as_mut() else { break };
                match c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]) {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "live updates: could not tell the other instances");
                        client = None;
                    }
                }
            }
        }
    }
}

fn listen_loop(url: &str, me: &str, local: broadcast::Sender<LiveEvent>, wakes: Wakes, closing: watch::Receiver<bool>) {
    let mut first = true;
    while !*closing.borrow() {
        let Some(mut client) = connect(url) else {
            std::thread::sleep(TICK);
            continue;
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
            tracing::warn!(error = %e, "live updates: cannot listen for the other instances");
            std::thread::sleep(TICK);
            continue;
        }
        if !first {
            // What the others sent while this one was not listening is lost: search again.
            let _ = local.send(LiveEvent::Missed);
        }
        first = false;
        while !*closing.borrow() {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(TICK);
            match waiting.next() {
                Ok(Some(n)) => match parse(n.payload(), me) {
                    Some(Heard::Changed(changed)) => {
                        let _ = local.send(LiveEvent::Changed(changed));
                    }
                    Some(Heard::Wake(what)) => wakes.of(what).notify_one(),
                    None => {}
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: the link to the other instances broke; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_split_into_payloads_postgresql_accepts_and_read_back() {
        let ids: Vec<i64> = (1_000_000_000..1_000_002_000).collect();
        let sent = payloads("i_abc", AccountId(7), &ids);
        assert!(sent.len() > 1, "2,000 ids need several notifications");
        assert!(sent.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let mut back = vec![];
        for p in &sent {
            assert!(parse(p, "i_abc").is_none(), "an instance ignores its own");
            let Some(Heard::Changed(changed)) = parse(p, "i_other") else {
                panic!("another's change: {p}");
            };
            assert_eq!(changed.account, AccountId(7));
            back.extend(changed.ids.iter().copied());
        }
        assert_eq!(back, ids);
        assert!(
            parse("i_x 1 1,two", "me").is_none(),
            "a payload that is not ours is ignored"
        );
        assert!(payloads("i", AccountId(1), &[]).is_empty());
        for what in [Wake::Exports, Wake::Qm, Wake::Recordings] {
            assert_eq!(parse(&wake_payload("i_a", what), "i_b"), Some(Heard::Wake(what)));
            assert_eq!(parse(&wake_payload("i_a", what), "i_a"), None);
        }
        assert_eq!(parse("i_a wake nothing", "i_b"), None);
    }
}
