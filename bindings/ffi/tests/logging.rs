//! The log sink: with the sink at `trace`, a session against the real server (sign-up, writes,
//! two syncs, a conflict left to the app, a rejection, sign-out) reaches the sink, including its
//! sync runs, and no line holds the password, the email, a token or a field value.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tandem::{set_log_sink, ConflictPolicy, LogLevel, LogSink, SecureStore, Tandem, TandemConfig};
use tandem_testkit::fixtures::{strict_notes_schema, MemorySecrets};
use tandem_testkit::server::{email, TestServer};
use tempfile::TempDir;

use tandem_testkit::fixtures::TEST_SCHEMA as SCHEMA;
const PASSWORD: &str = "logging-secret-Pa55word-7731";

fn block<F: Future>(future: F) -> F::Output {
    tandem::runtime::runtime().block_on(future)
}

#[derive(Default)]
struct Lines(Mutex<Vec<(LogLevel, String, String)>>);

impl LogSink for Lines {
    fn log(&self, level: LogLevel, target: String, message: String) {
        self.0.lock().unwrap().push((level, target, message));
    }
}

impl Lines {
    fn all(&self) -> Vec<(LogLevel, String, String)> {
        self.0.lock().unwrap().clone()
    }

    fn wait_for(&self, what: impl Fn(&(LogLevel, String, String)) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.all().iter().any(&what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// Panics on every line: the engine must not notice.
struct Panicking;

impl LogSink for Panicking {
    fn log(&self, _level: LogLevel, _target: String, _message: String) {
        panic!("a sink that fails");
    }
}

type Secrets = MemorySecrets;

/// Every token value `secrets` holds (the stored session's `*token*` strings).
fn tokens(secrets: &MemorySecrets) -> Vec<String> {
    fn collect(value: &Value, key: &str, into: &mut Vec<String>) {
        match value {
            Value::String(s) if key.to_lowercase().contains("token") => into.push(s.clone()),
            Value::Object(map) => map.iter().for_each(|(k, v)| collect(v, k, into)),
            Value::Array(items) => items.iter().for_each(|v| collect(v, key, into)),
            _ => {}
        }
    }
    let mut tokens = Vec::new();
    for stored in secrets.values() {
        if let Ok(value) = serde_json::from_str::<Value>(&stored) {
            collect(&value, "", &mut tokens);
        }
    }
    tokens
}

fn open(dir: &TempDir, url: &str, secrets: &Arc<Secrets>, policy: ConflictPolicy) -> Arc<Tandem> {
    let mut config = TandemConfig::with_server(dir.path().to_string_lossy(), SCHEMA, url);
    config.sync.realtime = false;
    config.sync.conflict_policy = Some(policy);
    config.secure_store = Some(Arc::clone(secrets) as Arc<dyn SecureStore>);
    Tandem::open(config).unwrap()
}

#[test]
fn a_session_at_trace_reaches_the_sink_without_secrets() {
    // A server stricter than the devices: exercise notes of more than 5 characters are rejected.
    let server = TestServer::with_schema(&strict_notes_schema());
    let lines = Arc::new(Lines::default());
    set_log_sink(Arc::clone(&lines) as Arc<dyn LogSink>, LogLevel::Trace);

    let account = email();
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (secrets_a, secrets_b) = (Arc::new(Secrets::default()), Arc::new(Secrets::default()));
    let a = open(&dir_a, server.url(), &secrets_a, ConflictPolicy::Manual);
    let b = open(&dir_b, server.url(), &secrets_b, ConflictPolicy::Manual);
    block(a.sign_up(account.clone(), PASSWORD.into())).unwrap();
    block(b.sign_in(account.clone(), PASSWORD.into())).unwrap();

    let values = [
        "Zebra-Quokka-Plan-4412",
        "notes: marmalade-violin-8801",
        "Day title: cobalt-kestrel-5150",
        "Mine: saffron-otter-2093",
        "Theirs: walnut-heron-6624",
        "Rejected: juniper-anvil-3307",
    ];
    a.put(
        "plans".into(),
        Some("p1".into()),
        json!({"name": values[0], "notes": values[1]}).to_string(),
    )
    .unwrap();
    a.put(
        "plan_days".into(),
        Some("d1".into()),
        json!({"planId": "p1", "dayIndex": 1, "title": values[2]}).to_string(),
    )
    .unwrap();
    block(a.sync_now()).unwrap();
    block(b.sync_now()).unwrap();

    // The same field on both devices: the second push meets a conflict, left to the app.
    a.patch(
        "plans".into(),
        "p1".into(),
        json!({"notes": values[3]}).to_string(),
    )
    .unwrap();
    b.patch(
        "plans".into(),
        "p1".into(),
        json!({"notes": values[4]}).to_string(),
    )
    .unwrap();
    block(a.sync_now()).unwrap();
    let report = block(b.sync_now()).unwrap();
    assert_eq!(report.conflicts, 1, "the test needs its conflict");

    // Notes the server finds too long: it rejects the change.
    b.put(
        "exercises".into(),
        Some("e1".into()),
        json!({"name": "Row", "notes": values[5]}).to_string(),
    )
    .unwrap();
    assert_eq!(
        block(b.sync_now()).unwrap().rejected,
        1,
        "the test needs its rejection"
    );

    let mut all_tokens = tokens(&secrets_a);
    all_tokens.extend(tokens(&secrets_b));
    assert!(
        all_tokens.len() >= 4,
        "both devices' access and refresh tokens"
    );
    block(a.sign_out(false)).unwrap();

    assert!(
        lines.wait_for(|(_, target, message)| target.starts_with("tandem_core")
            && message.contains("sync run finished")),
        "a sync run reached the sink"
    );
    assert!(
        lines.wait_for(|(level, _, message)| *level == LogLevel::Info
            && message.contains("conflict left to the app"))
    );
    assert!(lines.wait_for(
        |(level, _, message)| *level == LogLevel::Warn && message.contains("change rejected")
    ));
    assert!(lines.wait_for(|(_, _, message)| message.contains("signed out")));

    let all = lines.all();
    let mut secrets: Vec<String> = vec![PASSWORD.into(), account.clone()];
    secrets.extend(all_tokens);
    secrets.extend(values.iter().map(|v| v.to_string()));
    // Field values also as they would look partly quoted or escaped.
    secrets.extend(
        [
            "Zebra-Quokka",
            "marmalade",
            "cobalt-kestrel",
            "saffron",
            "walnut",
            "juniper",
        ]
        .map(String::from),
    );
    for (level, target, message) in &all {
        for secret in &secrets {
            assert!(
                !message.contains(secret.as_str()) && !target.contains(secret.as_str()),
                "a {level:?} line of {target} holds a secret: {message}"
            );
        }
    }
    // Libraries below the engine stay quiet below warn.
    for (level, target, _) in &all {
        if ["reqwest", "hyper", "rustls", "h2"]
            .iter()
            .any(|c| target.starts_with(c))
        {
            assert!(*level <= LogLevel::Warn, "{target} logged at {level:?}");
        }
    }

    // Replacing the sink: the new one gets the lines from now on; a panicking one harms nothing.
    set_log_sink(Arc::new(Panicking), LogLevel::Trace);
    block(b.sync_now()).unwrap();
    let second = Arc::new(Lines::default());
    set_log_sink(Arc::clone(&second) as Arc<dyn LogSink>, LogLevel::Info);
    block(b.sync_now()).unwrap();
    assert!(second.wait_for(|(_, _, message)| message.contains("sync run finished")));
    assert!(
        second
            .all()
            .iter()
            .all(|(level, _, _)| *level <= LogLevel::Info),
        "the new level holds"
    );
    // Nothing here comes near the queue's bound; the count is there for apps to read.
    let _ = tandem::dropped_log_lines();
}
