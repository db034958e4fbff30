//! Invitations over HTTP, on SQLite and PostgreSQL: the invitee sees them in its account
//! section (and gets an `account` poke), accepts with the role given or declines; inviting again
//! changes the role and renews the expiry; expired invitations are gone; an invitation to an
//! email without an account waits for its sign-up; the last owner stays; the limits hold.

use std::time::Duration;

use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{TestDb, TestServer};
use serde_json::Value;

on_both_backends!(
    invite_then_accept,
    invite_then_decline,
    inviting_again_changes_the_role,
    invitations_expire,
    invitations_wait_for_the_sign_up,
    members_and_owners_cannot_be_invited_twice,
    limits_answer_limit_reached,
    account_pokes_reach_the_member,
);

fn invitations(account: &Value) -> Vec<Value> {
    account["invitations"].as_array().unwrap().clone()
}

fn space_ids(account: &Value) -> Vec<String> {
    account["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

async fn invite_then_accept(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let space = c.create_space(&a.token, "Coach").await;
    let space_id = space["id"].as_str().unwrap();
    assert_eq!(space["role"], "owner");
    assert_eq!(space["memberCount"], 1);
    let before = c.account(&b.token).await;
    assert_eq!(invitations(&before), Vec::<Value>::new());
    let invited = c
        .invite(&a.token, space_id, &b.email.to_uppercase(), "viewer")
        .await;
    assert_eq!(invited.status.as_u16(), 201, "{}", invited.body);
    // Emails are trimmed and lower-cased.
    assert_eq!(invited.body["email"], b.email.as_str());
    assert_eq!(invited.body["role"], "viewer");
    assert!(invited.body["createdAt"].is_string() && invited.body["expiresAt"].is_string());
    let account = c.account(&b.token).await;
    assert!(account["accountSeq"].as_i64().unwrap() > before["accountSeq"].as_i64().unwrap());
    let pending = invitations(&account);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], invited.body["id"]);
    assert_eq!(pending[0]["spaceId"], space_id);
    assert_eq!(pending[0]["spaceName"], "Coach");
    assert_eq!(pending[0]["role"], "viewer");
    assert_eq!(pending[0]["invitedBy"], a.email.as_str());
    let invitation = invited.body["id"].as_str().unwrap();
    // Only the invitee accepts.
    c.accept(&a.token, invitation)
        .await
        .assert_error(404, "not_found");
    let joined = c.accept(&b.token, invitation).await;
    let joined = joined.assert_ok();
    assert_eq!(joined["id"], space_id);
    assert_eq!(joined["role"], "viewer");
    assert_eq!(joined["memberCount"], 2);
    let account = c.account(&b.token).await;
    assert_eq!(space_ids(&account), vec![space_id.to_string()]);
    assert_eq!(invitations(&account), Vec::<Value>::new());
    assert_eq!(account["spaces"][0]["role"], "viewer");
    // Accepted: the invitation is gone.
    c.accept(&b.token, invitation)
        .await
        .assert_error(404, "not_found");
    let list = c.space_invitations(&a.token, space_id).await;
    assert_eq!(list.assert_ok()["invitations"], serde_json::json!([]));
}

async fn invite_then_decline(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let space_id = c.create_space(&a.token, "S").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invitation = c.invite_ok(&a.token, &space_id, &b.email, "editor").await;
    c.decline(&a.token, &invitation)
        .await
        .assert_error(404, "not_found");
    assert_eq!(c.decline(&b.token, &invitation).await.status.as_u16(), 204);
    assert_eq!(invitations(&c.account(&b.token).await), Vec::<Value>::new());
    c.accept(&b.token, &invitation)
        .await
        .assert_error(404, "not_found");
    c.members(&b.token, &space_id)
        .await
        .assert_error(404, "not_found");
}

async fn inviting_again_changes_the_role(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let space_id = c.create_space(&a.token, "S").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = c.invite(&a.token, &space_id, &b.email, "viewer").await;
    server.advance(Duration::from_secs(60));
    let second = c.invite(&a.token, &space_id, &b.email, "editor").await;
    assert_eq!(second.status.as_u16(), 201);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.body["role"], "editor");
    assert!(second.body["expiresAt"].as_str() > first.body["expiresAt"].as_str());
    let pending = invitations(&c.account(&b.token).await);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["role"], "editor");
    let invitation = second.body["id"].as_str().unwrap();
    assert_eq!(
        c.accept(&b.token, invitation).await.assert_ok()["role"],
        "editor"
    );
}

async fn invitations_expire(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let space_id = c.create_space(&a.token, "S").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invitation = c.invite_ok(&a.token, &space_id, &b.email, "viewer").await;
    server.advance(Duration::from_secs(15 * 24 * 3600));
    // Sign in again: the access token expired with the clock.
    let b_token = c.sign_in(&b.email, "password123").await.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let a_token = c.sign_in(&a.email, "password123").await.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(invitations(&c.account(&b_token).await), Vec::<Value>::new());
    c.accept(&b_token, &invitation)
        .await
        .assert_error(404, "not_found");
    let list = c.space_invitations(&a_token, &space_id).await;
    assert_eq!(list.assert_ok()["invitations"], serde_json::json!([]));
    // Inviting again gives a fresh 14 days.
    let again = c.invite_ok(&a_token, &space_id, &b.email, "viewer").await;
    c.accept(&b_token, &again).await.assert_ok();
}

async fn invitations_wait_for_the_sign_up(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let a = c.user().await;
    let space_id = c.create_space(&a.token, "S").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let email = format!("later-{}@example.com", uuid::Uuid::now_v7().simple());
    // The same 201 whether the email has an account or not.
    let invitation = c.invite_ok(&a.token, &space_id, &email, "editor").await;
    let newcomer = c.user_with_email(&email).await;
    let pending = invitations(&c.account(&newcomer.token).await);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], invitation.as_str());
    c.accept(&newcomer.token, &invitation).await.assert_ok();
    c.members(&newcomer.token, &space_id).await.assert_ok();
}

async fn members_and_owners_cannot_be_invited_twice(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let space_id = c.create_space(&a.token, "S").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.invite(&a.token, &space_id, &a.email, "editor")
        .await
        .assert_error(409, "already_member");
    c.join(&a, &space_id, &b, "editor").await;
    c.invite(&a.token, &space_id, &b.email, "viewer")
        .await
        .assert_error(409, "already_member");
    c.invite(&a.token, &space_id, "not an email", "viewer")
        .await
        .assert_error(422, "validation_failed");
    c.invite(&a.token, &space_id, &b.email, "admin")
        .await
        .assert_error(400, "invalid_request");
    // An owner invitation makes a second owner; then the first may leave.
    let d = c.user().await;
    c.join(&a, &space_id, &d, "owner").await;
    assert_eq!(
        c.remove_member(&a.token, &space_id, &a.id)
            .await
            .status
            .as_u16(),
        204
    );
    c.remove_member(&d.token, &space_id, &d.id)
        .await
        .assert_error(409, "last_owner");
}

async fn limits_answer_limit_reached(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&[
            "--max-spaces-per-user",
            "2",
            "--max-space-members",
            "2",
            "--max-invitations-per-space",
            "1",
        ])
        .start();
    let c = server.client();
    let (a, b, d) = (c.user().await, c.user().await, c.user().await);
    let s1 = c.create_space(&a.token, "1").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.create_space(&a.token, "2").await;
    c.create_space_reply(&a.token, "3")
        .await
        .assert_error(409, "limit_reached");
    let to_b = c.invite_ok(&a.token, &s1, &b.email, "editor").await;
    c.invite(&a.token, &s1, &d.email, "editor")
        .await
        .assert_error(409, "limit_reached");
    c.accept(&b.token, &to_b).await.assert_ok();
    let to_d = c.invite_ok(&a.token, &s1, &d.email, "editor").await;
    c.accept(&d.token, &to_d)
        .await
        .assert_error(409, "limit_reached");
    // D at its own limit of spaces cannot join either.
    let e = c.user().await;
    let s3 = c.create_space(&e.token, "E").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.create_space(&d.token, "d1").await;
    c.create_space(&d.token, "d2").await;
    let to_d = c.invite_ok(&e.token, &s3, &d.email, "viewer").await;
    c.accept(&d.token, &to_d)
        .await
        .assert_error(409, "limit_reached");
}

async fn account_pokes_reach_the_member(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let space_id = c.create_space(&a.token, "S").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut events = c.events(&b.token).await;
    let invitation = c.invite_ok(&a.token, &space_id, &b.email, "viewer").await;
    let poke = events.next_poke_data().await;
    assert_eq!(poke["account"], true, "{poke}");
    assert!(poke["cursor"].is_string());
    c.accept(&b.token, &invitation).await.assert_ok();
    assert_eq!(events.next_poke_data().await["account"], true);
    c.set_role(&a.token, &space_id, &b.id, "editor")
        .await
        .assert_ok();
    assert_eq!(events.next_poke_data().await["account"], true);
    c.remove_member(&a.token, &space_id, &b.id).await;
    assert_eq!(events.next_poke_data().await["account"], true);
}
