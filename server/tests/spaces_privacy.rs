//! A non-member learns nothing: every answer about a space it cannot read is byte for byte the
//! answer a space that does not exist gets (status, code and description), and the same holds
//! for invitations addressed to someone else. On SQLite and PostgreSQL.

use tandem_testkit::fixtures::three_users_two_spaces;
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{create, in_space, op, Client, Reply, TestDb, TestServer};
use serde_json::{json, Value};

on_both_backends!(
    management_answers_match_unknown_spaces,
    invitations_of_others_match_unknown_ones,
    pushes_reveal_nothing_about_ids,
    stolen_and_made_up_cursors,
);

fn answer(reply: &Reply) -> (u16, Value) {
    (reply.status.as_u16(), reply.body.clone())
}

/// Every management call of `token` on `space`, as (status, body).
async fn all_calls(c: &Client, token: &str, space: &str, member: &str) -> Vec<(u16, Value)> {
    vec![
        answer(&c.members(token, space).await),
        answer(&c.rename_space(token, space, "Mine").await),
        answer(&c.delete_space(token, space).await),
        answer(&c.set_role(token, space, member, "owner").await),
        answer(&c.remove_member(token, space, member).await),
        answer(
            &c.remove_member(token, space, "0195c3a0-0000-7000-8000-000000000000")
                .await,
        ),
        answer(&c.invite(token, space, "x@example.com", "owner").await),
        answer(&c.space_invitations(token, space).await),
        answer(&c.revoke(token, space, "AAAAAAAAAAAAAAAAAAAAAA").await),
    ]
}

async fn management_answers_match_unknown_spaces(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    let real = all_calls(&c, &d.token, &f.s1, &f.a.id).await;
    let made_up = all_calls(
        &c,
        &d.token,
        "0195c3a0-0000-7000-8000-00000000dead",
        &f.a.id,
    )
    .await;
    assert_eq!(real, made_up);
    for (status, body) in &real {
        assert_eq!(*status, 404, "{body}");
        assert_eq!(body["error"], "not_found");
        // Nothing of the space in the answer.
        assert!(!body.to_string().contains(&f.s1));
    }
    // A removed member is a non-member: the same answers again.
    c.remove_member(&f.a.token, &f.s1, &f.c.id).await;
    let removed = all_calls(&c, &f.c.token, &f.s1, &f.a.id).await;
    assert_eq!(removed, made_up);
    // So is everyone after the space's deletion.
    c.delete_space(&f.a.token, &f.s1).await;
    let deleted = all_calls(&c, &f.a.token, &f.s1, &f.b.id).await;
    assert_eq!(deleted, made_up);
}

async fn invitations_of_others_match_unknown_ones(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    let invitation = c
        .invite_ok(&f.a.token, &f.s1, "someone@example.com", "viewer")
        .await;
    let guessed = [
        answer(&c.accept(&d.token, &invitation).await),
        answer(&c.decline(&d.token, &invitation).await),
    ];
    let made_up = [
        answer(&c.accept(&d.token, "AAAAAAAAAAAAAAAAAAAAAA").await),
        answer(&c.decline(&d.token, "AAAAAAAAAAAAAAAAAAAAAA").await),
    ];
    assert_eq!(guessed, made_up);
    assert_eq!(guessed[0].0, 404);
    // Inviting answers the same whether the email has an account or not (apart from the id
    // and times of the invitation).
    let with = c.invite(&f.a.token, &f.s1, &d.email, "viewer").await;
    let without = c
        .invite(&f.a.token, &f.s1, "nobody@example.com", "viewer")
        .await;
    assert_eq!(with.status, without.status);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&with.body), keys(&without.body));
}

async fn pushes_reveal_nothing_about_ids(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    c.push_ok(
        &f.a.token,
        vec![in_space(
            &f.s1,
            create("a-op-1", "team_projects", "p1", json!({"name": "P"})),
        )],
    )
    .await;
    let existing = c
        .push_ok(
            &d.token,
            vec![in_space(
                &f.s1,
                create("d-op-1", "team_projects", "p1", json!({"name": "X"})),
            )],
        )
        .await;
    let unknown = c
        .push_ok(
            &d.token,
            vec![in_space(
                &f.s1,
                create("d-op-2", "team_projects", "p-none", json!({"name": "X"})),
            )],
        )
        .await;
    let without_op = |mut r: Value| {
        r.as_object_mut().unwrap().remove("opId");
        r
    };
    assert_eq!(
        without_op(existing[0].clone()),
        without_op(unknown[0].clone())
    );
    assert_eq!(existing[0]["reason"], "forbidden");
    // A made-up space answers the same.
    let made_up = c
        .push_ok(
            &d.token,
            vec![in_space(
                "0195c3a0-0000-7000-8000-00000000dead",
                create("d-op-3", "team_projects", "p1", json!({"name": "X"})),
            )],
        )
        .await;
    assert_eq!(
        without_op(made_up[0].clone()),
        without_op(unknown[0].clone())
    );
    // Another member's op id is not a duplicate for D.
    let replay = c
        .push_ok(
            &d.token,
            vec![in_space(
                &f.s1,
                create("a-op-1", "team_projects", "p1", json!({"name": "P"})),
            )],
        )
        .await;
    assert_eq!(replay[0]["status"], "rejected");
    assert_eq!(replay[0]["reason"], "forbidden");
    let _ = op();
}

async fn stolen_and_made_up_cursors(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let d = c.user().await;
    let stream = format!("space:{}", f.s1);
    let page = c
        .pull_streams(&f.a.token, json!({}), None, None)
        .await
        .assert_ok()
        .clone();
    let cursor = page["streams"][&stream]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    // A's cursor is refused for D, and for A under another key, like a made-up one.
    let stolen = c
        .pull_streams(&d.token, json!({ stream.clone(): cursor }), None, None)
        .await;
    stolen.assert_error(400, "invalid_request");
    let moved = c
        .pull_streams(
            &f.a.token,
            json!({ format!("space:{}", f.s2): cursor }),
            None,
            None,
        )
        .await;
    moved.assert_error(400, "invalid_request");
    let made_up = c
        .pull_streams(
            &d.token,
            json!({ stream.clone(): "c3.1.0.AAAAAAAAAAAAAAAAAAAAAA" }),
            None,
            None,
        )
        .await;
    assert_eq!(answer(&stolen), answer(&made_up));
    // A guessed space with no cursor is `gone`, as a space that does not exist is.
    let guessed = c
        .pull_streams(&d.token, json!({ stream.clone(): null }), None, None)
        .await
        .assert_ok()
        .clone();
    let unknown = c
        .pull_streams(
            &d.token,
            json!({ "space:0195c3a0-0000-7000-8000-00000000dead": null }),
            None,
            None,
        )
        .await
        .assert_ok()
        .clone();
    assert_eq!(guessed["streams"][&stream], json!({"status": "gone"}));
    assert_eq!(
        unknown["streams"]["space:0195c3a0-0000-7000-8000-00000000dead"],
        json!({"status": "gone"})
    );
}
