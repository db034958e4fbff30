//! The last sync run's outcome survives a restart: an app opening its store after a failed sync
//! sees at once that it failed, when and why (typed), not a blank `idle`.

use std::sync::Arc;

use tandem::{SyncFailure, SyncPhase, TandemError};
use tandem_testkit::server::{email, TestServer};
use tempfile::TempDir;

mod common;

use common::{block, open, Secrets, PASSWORD};

#[test]
fn a_failed_run_is_shown_typed_by_the_next_session_and_a_success_clears_it() {
    let mut server = TestServer::start();
    let (dir, secrets) = (TempDir::new().unwrap(), Arc::new(Secrets::default()));
    let t = open(&dir, server.url(), &secrets, |_| {});
    assert_eq!(t.sync_status().unwrap().last_run_at, None);
    block(t.sign_up(email(), PASSWORD.into())).unwrap();
    t.put(
        "plans".into(),
        Some("p".into()),
        r#"{"name": "Legs"}"#.into(),
    )
    .unwrap();
    block(t.sync_now()).unwrap();
    let ok = t.sync_status().unwrap();
    assert!(ok.last_run_at.is_some());
    assert_eq!((ok.last_failure, ok.last_error.as_deref()), (None, None));

    server.stop();
    t.put(
        "plans".into(),
        Some("q".into()),
        r#"{"name": "Arms"}"#.into(),
    )
    .unwrap();
    let failed = block(t.sync_now());
    assert!(matches!(
        failed,
        Err(TandemError::Sync {
            kind: SyncFailure::Offline,
            ..
        })
    ));
    let live = t.sync_status().unwrap();
    assert_eq!(live.last_failure, Some(SyncFailure::Offline));
    assert!(live.last_run_at >= ok.last_run_at);
    t.shutdown();

    // The next session starts with it.
    let t = open(&dir, server.url(), &secrets, |_| {});
    let reopened = t.sync_status().unwrap();
    assert_eq!(reopened.phase, SyncPhase::Offline);
    assert_eq!(reopened.last_failure, Some(SyncFailure::Offline));
    assert_eq!(reopened.last_error, live.last_error);
    assert_eq!(reopened.last_run_at, live.last_run_at);
    assert_eq!(
        reopened.last_synced_at, ok.last_synced_at,
        "the last success stays"
    );
    assert_eq!(reopened.pending, 1);

    // A successful run clears it, in this session and the next.
    server.restart();
    block(t.sync_now()).unwrap();
    let cleared = t.sync_status().unwrap();
    assert_eq!(
        (cleared.last_failure, cleared.last_error.as_deref()),
        (None, None)
    );
    t.shutdown();
    let t = open(&dir, server.url(), &secrets, |_| {});
    let next = t.sync_status().unwrap();
    assert_eq!(next.phase, SyncPhase::Idle);
    assert_eq!(next.last_failure, None);
    assert_eq!(next.last_run_at, cleared.last_run_at);
    t.shutdown();
}
