//! Many writers push while an incremental puller follows with cursors: the puller's final view
//! must equal a full pull (no change skipped), on SQLite and PostgreSQL.

use tandem_testkit::server_suite as common;

use tandem_testkit::on_both_backends;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{delete, op, upsert, TestDb, TestServer};
use serde_json::{json, Value};

on_both_backends!(puller_never_misses_a_concurrent_change);

const WRITERS: usize = 6;
const PUSHES_PER_WRITER: usize = 25;
const MUTATIONS_PER_PUSH: usize = 20;

/// (entity, entityId) → (version, deleted)
type View = HashMap<(String, String), (i64, bool)>;

async fn puller_never_misses_a_concurrent_change(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (token, _) = c.new_user().await;
    let done = Arc::new(AtomicBool::new(false));

    let puller = {
        let (c, token, done) = (c.clone(), token.clone(), done.clone());
        tokio::spawn(async move {
            let mut view = View::new();
            let mut cursor: Option<String> = None;
            loop {
                // Read the flag before pulling: a pull that starts after the writers finished
                // and reaches the end has seen everything.
                let writers_done = done.load(Ordering::SeqCst);
                let page = c
                    .pull(&token, cursor.as_deref(), Some(50))
                    .await
                    .assert_ok()
                    .clone();
                for change in page["changes"].as_array().unwrap() {
                    apply(&mut view, change);
                }
                cursor = Some(page["cursor"].as_str().unwrap().to_string());
                if writers_done && !page["hasMore"].as_bool().unwrap() {
                    return view;
                }
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (c, token) = (c.clone(), token.clone());
            tokio::spawn(async move { write_load(&c, &token, w).await })
        })
        .collect();
    let mut expected = View::new();
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let followed = puller.await.unwrap();

    let (all, _) = c.pull_all(&token, None).await;
    let mut full = View::new();
    for change in &all {
        apply(&mut full, change);
    }
    assert_eq!(
        full.len(),
        WRITERS * PUSHES_PER_WRITER * MUTATIONS_PER_PUSH / 2
    );
    assert_eq!(
        followed, full,
        "the incremental view differs from a full pull"
    );
    assert_eq!(
        full, expected,
        "the server's state differs from what the writers were told"
    );
}

/// Records a change, checking that a record never comes back at an older or equal version.
fn apply(view: &mut View, change: &Value) {
    let key = (
        change["entity"].as_str().unwrap().to_string(),
        change["entityId"].as_str().unwrap().to_string(),
    );
    let version = change["version"].as_i64().unwrap();
    let deleted = change["deleted"].as_bool().unwrap();
    if let Some((seen, _)) = view.get(&key) {
        assert!(
            version > *seen,
            "{key:?} came again at version {version} after {seen}"
        );
    }
    view.insert(key, (version, deleted));
}

/// One writer: each push creates ten records and updates or deletes ten created before.
async fn write_load(c: &common::Client, token: &str, writer: usize) -> View {
    let mut versions: Vec<(String, i64, bool)> = Vec::new();
    let mut next = 0usize;
    for round in 0..PUSHES_PER_WRITER {
        let mut mutations = Vec::new();
        let mut targets = Vec::new();
        for _ in 0..MUTATIONS_PER_PUSH / 2 {
            let id = format!("w{writer}-{next}");
            next += 1;
            mutations.push(upsert(&op(), "exercises", &id, None, json!({"name": id})));
            targets.push(None);
        }
        let live: Vec<usize> = (0..versions.len()).filter(|&i| !versions[i].2).collect();
        for (k, &i) in live.iter().rev().take(MUTATIONS_PER_PUSH / 2).enumerate() {
            let (id, version, _) = &versions[i];
            if (round + k) % 5 == 0 {
                mutations.push(delete(&op(), "exercises", id, Some(*version)));
            } else {
                mutations.push(upsert(
                    &op(),
                    "exercises",
                    id,
                    Some(*version),
                    json!({"name": id, "notes": "r"}),
                ));
            }
            targets.push(Some(i));
        }
        let results = c.push_ok(token, mutations.clone()).await;
        for ((result, target), mutation) in results.iter().zip(&targets).zip(&mutations) {
            assert_eq!(result["status"], "applied", "{result}");
            let version = result["version"].as_i64().unwrap();
            let deleted = mutation["type"] == "delete";
            match target {
                None => versions.push((
                    mutation["entityId"].as_str().unwrap().to_string(),
                    version,
                    false,
                )),
                Some(i) => versions[*i] = (versions[*i].0.clone(), version, deleted),
            }
        }
    }
    versions
        .into_iter()
        .map(|(id, v, d)| (("exercises".to_string(), id), (v, d)))
        .collect()
}
