//! An operator's revocation (issue 16, `POST /admin/v1/users/{id}/revoke`) as a device sees it,
//! through the real `tandem-server` binary: the device's still-valid access token is refused at
//! once, its refresh token too, so its next run ends the session (`SessionExpired`, phase
//! `SignedOut`) with every pending change kept; signing in again lands them. Another account's
//! device keeps syncing.

use serde_json::json;
use tandem::{AuthState, SyncFailure, SyncPhase, TandemError};
use tandem_testkit::server::{email, TestServer, JWT_SECRET};

mod common;

use common::{block, device};

const ADMIN: &str = "admin-token-for-the-revoke-tests-0123456789";

#[test]
fn a_revoked_user_is_signed_out_at_once_and_keeps_pending_changes() {
    let server = TestServer::builder()
        .env(&[
            ("TANDEM_JWT_SECRET", JWT_SECRET),
            ("TANDEM_ADMIN_TOKEN", ADMIN),
        ])
        .start();
    let d = device(server.url());
    let other = device(server.url());
    let account = email();
    d.sign_up(&account);
    other.sign_up(&email());
    d.put("plans", "p1", json!({"name": "synced"}));
    d.sync();
    d.put("plans", "p2", json!({"name": "pending"}));

    let c = server.client();
    let revoked = block(c.post(
        &format!("/admin/v1/users/{account}/revoke"),
        Some(ADMIN),
        &json!({}),
    ));
    assert_eq!(revoked.assert_ok()["sessionsRevoked"], 1);

    // The access token has not expired, yet the run ends the session.
    match d.try_sync() {
        Err(TandemError::Sync {
            kind: SyncFailure::SessionExpired,
            ..
        }) => {}
        other => panic!("expected the session to end, got {other:?}"),
    }
    assert!(matches!(
        d.t.auth_state().unwrap(),
        AuthState::SessionExpired { .. }
    ));
    assert_eq!(d.t.sync_status().unwrap().phase, SyncPhase::SignedOut);
    assert_eq!(d.pending(), 1, "the pending change stays");
    assert!(d.doc("plans", "p1").is_some(), "and the synced record");

    // Another account is untouched.
    other.put("plans", "o1", json!({"name": "other"}));
    other.sync();

    // Signing in again (within the revocation's second, too) works and sends what waited.
    d.sign_in(&account);
    d.sync();
    assert_eq!(d.pending(), 0);
    let second = device(server.url());
    second.sign_in(&account);
    second.sync();
    assert_eq!(second.doc("plans", "p2"), Some(json!({"name": "pending"})));
    assert_eq!(second.doc("plans", "p1"), Some(json!({"name": "synced"})));
}
