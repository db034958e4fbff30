//! Randomized, on both backends: six writers (members of random subsets of three spaces, some
//! editors, one viewer) push batches and groups into their own streams and the spaces' while
//! three readers follow with the stream form of pull (limits 1..50, random restarts) and a purge
//! loop removes tombstones. Each reader's final view equals a full pull of every stream it reads,
//! no reader ever sees a record's version go back, and the viewer's changes are all refused.
//! The seed is printed; `TANDEM_SEED=<n>` replays a run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tandem_server::spaces::SpaceLimits;
use tandem_server::storage::{Role, SpaceOutcome, Storage};
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite::{delete, op, upsert, Client, TestDb, TestServer};

on_both_backends!(readers_never_miss_or_go_back_across_streams);

const SPACES: usize = 3;
const WRITERS: usize = 6;
const PUSHES_PER_WRITER: usize = 15;
const READERS: usize = 3;

/// (stream wire name, entity, entityId) → (version, deleted)
type View = HashMap<(String, String, String), (i64, bool)>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[derive(Clone)]
struct User {
    id: String,
    email: String,
    token: String,
}

async fn user(c: &Client, storage: &Storage) -> User {
    let email = format!("u-{}@example.com", uuid::Uuid::now_v7().simple());
    let session = c.signup(&email, "password123").await.assert_ok().clone();
    User {
        id: storage.user_by_email(&email).await.unwrap().unwrap().id,
        email,
        token: session["access_token"].as_str().unwrap().to_string(),
    }
}

fn done<T: std::fmt::Debug>(outcome: SpaceOutcome<T>) -> T {
    match outcome {
        SpaceOutcome::Done(value) => value,
        other => panic!("expected Done, got {other:?}"),
    }
}

async fn readers_never_miss_or_go_back_across_streams(db: TestDb) {
    let seed: u64 = std::env::var("TANDEM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("spaces_concurrency seed: TANDEM_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let owner = user(&c, &storage).await;
    let limits = SpaceLimits::default();
    let mut spaces = Vec::new();
    for i in 0..SPACES {
        let (space, _) = done(
            storage
                .create_space(&owner.id, &format!("S{i}"), &op(), now_ms(), limits)
                .await
                .unwrap(),
        );
        spaces.push(space.id);
    }
    // Writers: random memberships; the last one is a viewer of every space.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let u = user(&c, &storage).await;
        let mut member_of = Vec::new();
        for space in &spaces {
            let viewer = w == WRITERS - 1;
            if !viewer && !rng.random_bool(0.6) {
                continue;
            }
            let role = if viewer { Role::Viewer } else { Role::Editor };
            let (invitation, _) = done(
                storage
                    .invite(&owner.id, space, &u.email, role, now_ms(), limits)
                    .await
                    .unwrap(),
            );
            done(
                storage
                    .accept_invitation(&u.id, &invitation.id, now_ms(), limits)
                    .await
                    .unwrap(),
            );
            member_of.push(space.clone());
        }
        writers.push((u, member_of, w == WRITERS - 1));
    }

    let done_flag = Arc::new(AtomicBool::new(false));
    // Readers: the first writers and the viewer.
    let reader_users: Vec<User> = (0..READERS - 1)
        .chain([WRITERS - 1])
        .map(|i| writers[i].0.clone())
        .collect();
    let readers: Vec<_> = reader_users
        .iter()
        .enumerate()
        .map(|(r, u)| {
            let (c, token, done_flag) = (c.clone(), u.token.clone(), done_flag.clone());
            let reader_seed = seed.wrapping_add(1000 + r as u64);
            tokio::spawn(async move { follow(&c, &token, &done_flag, reader_seed).await })
        })
        .collect();
    let purging = {
        let (storage, done_flag) = (Storage::open(&db.url).await.unwrap(), done_flag.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            while !done_flag.load(Ordering::SeqCst) {
                // Every tombstone goes at once (op ids stay: retries must stay duplicates).
                storage.purge(i64::MAX / 2, 0).await.unwrap();
                runs += 1;
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            }
            runs
        })
    };
    let writer_tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(w, (u, member_of, viewer))| {
            let (c, token, member_of, viewer) =
                (c.clone(), u.token.clone(), member_of.clone(), *viewer);
            let writer_seed = seed.wrapping_add(w as u64);
            tokio::spawn(
                async move { write_load(&c, &token, w, &member_of, viewer, writer_seed).await },
            )
        })
        .collect();
    for task in writer_tasks {
        task.await.unwrap();
    }
    done_flag.store(true, Ordering::SeqCst);
    assert!(purging.await.unwrap() > 0);
    for (reader, u) in readers.into_iter().zip(&reader_users) {
        let followed = reader.await.unwrap();
        let full = live(&full_pull(&c, &u.token).await);
        assert_eq!(
            live(&followed),
            full,
            "seed {seed}: the reader's view differs from a full pull"
        );
    }
}

/// One writer's pushes: batches into its own stream and the spaces it is a member of, some as
/// groups, creating, updating and deleting records of its own ids (so it knows their versions).
async fn write_load(
    c: &Client,
    token: &str,
    w: usize,
    member_of: &[String],
    viewer: bool,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    // (space or None, id) → version of the live record
    let mut mine: HashMap<(Option<String>, String), i64> = HashMap::new();
    let mut next_id = 0;
    for push in 0..PUSHES_PER_WRITER {
        let space = if member_of.is_empty() || rng.random_bool(0.3) {
            None
        } else {
            Some(member_of[rng.random_range(0..member_of.len())].clone())
        };
        let group = rng.random_bool(0.3).then(|| format!("g{w}-{push}"));
        let mut batch = Vec::new();
        let mut planned: Vec<(String, Option<i64>)> = Vec::new();
        for _ in 0..rng.random_range(1..=20) {
            let existing: Vec<(String, i64)> = mine
                .iter()
                .filter(|((s, _), _)| *s == space)
                .map(|((_, id), v)| (id.clone(), *v))
                .filter(|(id, _)| !planned.iter().any(|(p, _)| p == id))
                .collect();
            let entity = if space.is_some() {
                "team_projects"
            } else {
                "plans"
            };
            let mut m = if existing.is_empty() || rng.random_bool(0.5) {
                next_id += 1;
                let id = format!("w{w}-{next_id}");
                planned.push((id.clone(), Some(1)));
                upsert(
                    &op(),
                    entity,
                    &id,
                    None,
                    json!({"name": format!("n{next_id}")}),
                )
            } else {
                let (id, version) = &existing[rng.random_range(0..existing.len())];
                if rng.random_bool(0.3) {
                    planned.push((id.clone(), None));
                    delete(&op(), entity, id, Some(*version))
                } else {
                    planned.push((id.clone(), Some(version + 1)));
                    upsert(
                        &op(),
                        entity,
                        id,
                        Some(*version),
                        json!({"name": format!("v{}", version + 1)}),
                    )
                }
            };
            if let Some(space) = &space {
                m["space"] = json!(space);
            }
            if let Some(group) = &group {
                m["groupId"] = json!(group);
            }
            batch.push(m);
        }
        let results = c.push_ok(token, batch).await;
        for ((id, after), result) in planned.into_iter().zip(&results) {
            if viewer && space.is_some() {
                // Refused: `forbidden`, or in a group the members after the first `aborted`.
                let reason = result["reason"].as_str();
                assert!(
                    reason == Some("forbidden") || reason == Some("group_failed"),
                    "{result}"
                );
                continue;
            }
            assert_eq!(result["status"], "applied", "{result}");
            let key = (space.clone(), id);
            match after {
                Some(_) => {
                    mine.insert(key, result["version"].as_i64().unwrap());
                }
                None => {
                    mine.remove(&key);
                }
            }
        }
    }
}

/// Follows every stream the reader may read until the writers are done and a pull started after
/// that reached the end; checks that no version ever goes back.
async fn follow(c: &Client, token: &str, done_flag: &AtomicBool, seed: u64) -> View {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut view = View::new();
    let mut highest: HashMap<(String, String, String), i64> = HashMap::new();
    let mut cursors = json!({});
    loop {
        let writers_done = done_flag.load(Ordering::SeqCst);
        if !writers_done && rng.random_bool(0.05) {
            // A restart from nothing: a new install pulling everything again.
            view.clear();
            cursors = json!({});
        }
        let limit = rng.random_range(1..=50);
        let page = c
            .post(
                "/sync/v1/pull",
                Some(token),
                &json!({"streams": cursors, "limit": limit}),
            )
            .await
            .assert_ok()
            .clone();
        for change in page["changes"].as_array().unwrap() {
            let stream = change["space"]
                .as_str()
                .map_or("user".to_string(), |s| format!("space:{s}"));
            let key = (
                stream,
                change["entity"].as_str().unwrap().to_string(),
                change["entityId"].as_str().unwrap().to_string(),
            );
            let version = change["version"].as_i64().unwrap();
            let top = highest.entry(key.clone()).or_default();
            assert!(version >= *top, "{key:?} went back from {top} to {version}");
            *top = version;
            view.insert(key, (version, change["deleted"].as_bool().unwrap()));
        }
        for (stream, entry) in page["streams"].as_object().unwrap() {
            match entry["status"].as_str().unwrap() {
                "ok" => cursors[stream] = entry["cursor"].clone(),
                "expired" => {
                    // That stream alone starts over; its local copy is rebuilt.
                    view.retain(|(s, _, _), _| s != stream);
                    cursors[stream] = Value::Null;
                }
                other => panic!("unexpected status {other} for {stream}"),
            }
        }
        if writers_done && !page["hasMore"].as_bool().unwrap() {
            return view;
        }
    }
}

async fn full_pull(c: &Client, token: &str) -> View {
    let mut view = View::new();
    let mut cursors = json!({});
    loop {
        let page = c
            .post(
                "/sync/v1/pull",
                Some(token),
                &json!({"streams": cursors, "limit": 1000}),
            )
            .await
            .assert_ok()
            .clone();
        for change in page["changes"].as_array().unwrap() {
            let stream = change["space"]
                .as_str()
                .map_or("user".to_string(), |s| format!("space:{s}"));
            view.insert(
                (
                    stream,
                    change["entity"].as_str().unwrap().to_string(),
                    change["entityId"].as_str().unwrap().to_string(),
                ),
                (
                    change["version"].as_i64().unwrap(),
                    change["deleted"].as_bool().unwrap(),
                ),
            );
        }
        for (stream, entry) in page["streams"].as_object().unwrap() {
            cursors[stream] = entry["cursor"].clone();
        }
        if !page["hasMore"].as_bool().unwrap() {
            return view;
        }
    }
}

/// The live records of a view (purged tombstones may or may not still be held).
fn live(view: &View) -> HashMap<(String, String, String), i64> {
    view.iter()
        .filter(|(_, (_, deleted))| !deleted)
        .map(|(k, (v, _))| (k.clone(), *v))
        .collect()
}
