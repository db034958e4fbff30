//! The table of docs/design/spaces.md §5 over HTTP: every role × operation, allowed or refused
//! with the code the protocol gives, on SQLite and PostgreSQL.

use tandem_testkit::fixtures::three_users_two_spaces;
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use std::time::Duration;

use common::{create, in_space, op, statuses, TestDb, TestServer};
use serde_json::json;

on_both_backends!(
    members_list_for_every_member_only,
    management_is_for_owners,
    role_changes_and_removal,
    leaving_and_the_last_owner,
    deleting_is_for_owners,
    pushes_by_role,
    names_and_ids_are_checked,
    space_pushes_poke_members_only,
);

async fn members_list_for_every_member_only(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    for user in [&f.a, &f.b, &f.c] {
        let members = c.members(&user.token, &f.s1).await.assert_ok().clone();
        let mut roles: Vec<(String, String)> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["userId"].as_str().unwrap().to_string(),
                    m["role"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        roles.sort();
        let mut expected = vec![
            (f.a.id.clone(), "owner".to_string()),
            (f.b.id.clone(), "editor".to_string()),
            (f.c.id.clone(), "viewer".to_string()),
        ];
        expected.sort();
        assert_eq!(roles, expected);
        assert!(members["members"][0]["email"].is_string());
        assert!(members["members"][0]["joinedAt"].is_string());
    }
    c.members(&d.token, &f.s1)
        .await
        .assert_error(404, "not_found");
    // C is not in S2.
    c.members(&f.c.token, &f.s2)
        .await
        .assert_error(404, "not_found");
}

async fn management_is_for_owners(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    let outsider = "someone@example.com";

    // Rename.
    let renamed = c.rename_space(&f.a.token, &f.s1, "Family").await;
    assert_eq!(renamed.assert_ok()["name"], "Family");
    assert_eq!(renamed.body["role"], "owner");
    assert_eq!(renamed.body["memberCount"], 3);
    for user in [&f.b, &f.c] {
        c.rename_space(&user.token, &f.s1, "X")
            .await
            .assert_error(403, "forbidden");
    }
    c.rename_space(&d.token, &f.s1, "X")
        .await
        .assert_error(404, "not_found");

    // Invite.
    for user in [&f.b, &f.c] {
        c.invite(&user.token, &f.s1, outsider, "viewer")
            .await
            .assert_error(403, "forbidden");
    }
    c.invite(&d.token, &f.s1, outsider, "viewer")
        .await
        .assert_error(404, "not_found");
    let invitation = c.invite_ok(&f.a.token, &f.s1, outsider, "viewer").await;

    // List invitations.
    let list = c.space_invitations(&f.a.token, &f.s1).await;
    let list = list.assert_ok()["invitations"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], invitation);
    assert_eq!(list[0]["email"], outsider);
    assert_eq!(list[0]["role"], "viewer");
    for user in [&f.b, &f.c] {
        c.space_invitations(&user.token, &f.s1)
            .await
            .assert_error(403, "forbidden");
    }
    c.space_invitations(&d.token, &f.s1)
        .await
        .assert_error(404, "not_found");

    // Revoke.
    for user in [&f.b, &f.c] {
        c.revoke(&user.token, &f.s1, &invitation)
            .await
            .assert_error(403, "forbidden");
    }
    c.revoke(&d.token, &f.s1, &invitation)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        c.revoke(&f.a.token, &f.s1, &invitation)
            .await
            .status
            .as_u16(),
        204
    );
    c.revoke(&f.a.token, &f.s1, &invitation)
        .await
        .assert_error(404, "not_found");
    // A is only a viewer of S2.
    c.invite(&f.a.token, &f.s2, outsider, "viewer")
        .await
        .assert_error(403, "forbidden");
}

async fn role_changes_and_removal(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;

    for user in [&f.b, &f.c] {
        c.set_role(&user.token, &f.s1, &f.a.id, "viewer")
            .await
            .assert_error(403, "forbidden");
        c.remove_member(&user.token, &f.s1, &f.a.id)
            .await
            .assert_error(403, "forbidden");
    }
    c.set_role(&d.token, &f.s1, &f.c.id, "editor")
        .await
        .assert_error(404, "not_found");
    c.remove_member(&d.token, &f.s1, &f.c.id)
        .await
        .assert_error(404, "not_found");
    // A member that is not there.
    c.set_role(&f.a.token, &f.s1, &d.id, "editor")
        .await
        .assert_error(404, "not_found");
    c.remove_member(&f.a.token, &f.s1, &d.id)
        .await
        .assert_error(404, "not_found");
    let member = c.set_role(&f.a.token, &f.s1, &f.c.id, "editor").await;
    assert_eq!(member.assert_ok()["role"], "editor");
    assert_eq!(member.body["userId"], f.c.id);
    c.set_role(&f.a.token, &f.s1, &f.c.id, "admin")
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(
        c.remove_member(&f.a.token, &f.s1, &f.c.id)
            .await
            .status
            .as_u16(),
        204
    );
    c.members(&f.c.token, &f.s1)
        .await
        .assert_error(404, "not_found");
    let account = c.account(&f.c.token).await;
    assert_eq!(account["spaces"], json!([]));
}

async fn leaving_and_the_last_owner(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    // Anyone leaves; the last owner may not, nor demote themself.
    assert_eq!(
        c.remove_member(&f.c.token, &f.s1, &f.c.id)
            .await
            .status
            .as_u16(),
        204
    );
    c.remove_member(&f.a.token, &f.s1, &f.a.id)
        .await
        .assert_error(409, "last_owner");
    c.set_role(&f.a.token, &f.s1, &f.a.id, "editor")
        .await
        .assert_error(409, "last_owner");
    c.remove_member(&d.token, &f.s1, &d.id)
        .await
        .assert_error(404, "not_found");
    // With a second owner, the first may go.
    c.set_role(&f.a.token, &f.s1, &f.b.id, "owner")
        .await
        .assert_ok();
    assert_eq!(
        c.remove_member(&f.a.token, &f.s1, &f.a.id)
            .await
            .status
            .as_u16(),
        204
    );
    let members = c.members(&f.b.token, &f.s1).await;
    assert_eq!(members.assert_ok()["members"].as_array().unwrap().len(), 1);
    c.members(&f.a.token, &f.s1)
        .await
        .assert_error(404, "not_found");
}

async fn deleting_is_for_owners(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    for user in [&f.b, &f.c] {
        c.delete_space(&user.token, &f.s1)
            .await
            .assert_error(403, "forbidden");
    }
    c.delete_space(&d.token, &f.s1)
        .await
        .assert_error(404, "not_found");
    assert_eq!(c.delete_space(&f.a.token, &f.s1).await.status.as_u16(), 204);
    for user in [&f.a, &f.b, &f.c] {
        c.members(&user.token, &f.s1)
            .await
            .assert_error(404, "not_found");
        let account = c.account(&user.token).await;
        assert!(
            account["spaces"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["id"] != f.s1.as_str()),
            "{account}"
        );
    }
    c.delete_space(&f.a.token, &f.s1)
        .await
        .assert_error(404, "not_found");
}

async fn pushes_by_role(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    let project = |id: &str| {
        in_space(
            &f.s1,
            create(&op(), "team_projects", id, json!({"name": "P"})),
        )
    };
    assert_eq!(
        statuses(&c.push_ok(&f.a.token, vec![project("p-owner")]).await),
        vec![("applied".to_string(), None)]
    );
    assert_eq!(
        statuses(&c.push_ok(&f.b.token, vec![project("p-editor")]).await),
        vec![("applied".to_string(), None)]
    );
    for user in [&f.c, &d] {
        assert_eq!(
            statuses(&c.push_ok(&user.token, vec![project("p-refused")]).await),
            vec![("rejected".to_string(), Some("forbidden".to_string()))]
        );
    }
    // Public collections: no user writes them.
    let catalog = create(&op(), "catalog", "c1", json!({"name": "Squat"}));
    assert_eq!(
        statuses(&c.push_ok(&f.a.token, vec![catalog]).await),
        vec![("rejected".to_string(), Some("forbidden".to_string()))]
    );
    // A removed editor is refused at once.
    c.remove_member(&f.a.token, &f.s1, &f.b.id).await;
    assert_eq!(
        statuses(&c.push_ok(&f.b.token, vec![project("p-late")]).await),
        vec![("rejected".to_string(), Some("forbidden".to_string()))]
    );
}

async fn names_and_ids_are_checked(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let a = c.user().await;
    for name in ["", "   ", &"x".repeat(201)] {
        c.create_space_reply(&a.token, name)
            .await
            .assert_error(422, "validation_failed");
    }
    c.post(
        "/sync/v1/spaces",
        Some(&a.token),
        &json!({"name": "ok", "requestId": "bad id!"}),
    )
    .await
    .assert_error(400, "invalid_request");
    // The same requestId again: the same space, 200.
    let body = json!({"name": "Once", "requestId": "req-1"});
    let first = c.post("/sync/v1/spaces", Some(&a.token), &body).await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.body);
    let again = c.post("/sync/v1/spaces", Some(&a.token), &body).await;
    assert_eq!(again.assert_ok()["id"], first.body["id"]);
    assert_eq!(
        c.account(&a.token).await["spaces"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    c.members(&a.token, "bad%20id")
        .await
        .assert_error(400, "invalid_request");
    c.members(&a.token, &"x".repeat(300))
        .await
        .assert_error(400, "invalid_request");
    // Space routes need a user's token.
    c.get("/sync/v1/account", None)
        .await
        .assert_error(401, "unauthorized");
    c.create_space_reply("not-a-token", "x")
        .await
        .assert_error(401, "unauthorized");
}

/// A push to a space pokes its members' event streams with the space's stream, and nobody
/// else's; a member who joins while connected is poked about the space from then on, and one
/// removed is not.
async fn space_pushes_poke_members_only(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    let (mut b_events, mut c_events, mut d_events) = (
        c.events(&f.b.token).await,
        c.events(&f.c.token).await,
        c.events(&d.token).await,
    );
    let stream = format!("space:{}", f.s1);
    let push = |id: &str| {
        in_space(
            &f.s1,
            create(&op(), "team_projects", id, json!({"name": "P"})),
        )
    };
    c.push_ok(&f.a.token, vec![push("p1")]).await;
    assert_eq!(b_events.next_poke_data().await["stream"], stream.as_str());
    assert_eq!(c_events.next_poke_data().await["stream"], stream.as_str());
    assert!(d_events
        .poke_within(Duration::from_millis(300))
        .await
        .is_none());
    // D joins: an account poke (the invitation, then the membership), then the space's pokes;
    // the members get an account poke too (the member count they see changed).
    c.join(&f.a, &f.s1, &d, "viewer").await;
    assert_eq!(d_events.next_poke_data().await["account"], true);
    assert_eq!(d_events.next_poke_data().await["account"], true);
    assert_eq!(c_events.next_poke_data().await["account"], true);
    c.push_ok(&f.a.token, vec![push("p2")]).await;
    assert_eq!(d_events.next_poke_data().await["stream"], stream.as_str());
    // C is removed: an account poke, then nothing of the space.
    assert_eq!(c_events.next_poke_data().await["stream"], stream.as_str());
    c.remove_member(&f.a.token, &f.s1, &f.c.id).await;
    assert_eq!(c_events.next_poke_data().await["account"], true);
    c.push_ok(&f.a.token, vec![push("p3")]).await;
    assert!(c_events
        .poke_within(Duration::from_millis(300))
        .await
        .is_none());
    // Pokes keep the user-stream cursor.
    let poke = b_events.next_poke_data().await;
    assert!(poke["cursor"].as_str().unwrap().starts_with('c'), "{poke}");
}
