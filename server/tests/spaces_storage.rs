//! The membership primitives of both backends, called directly (the HTTP suites are
//! spaces_roles.rs, spaces_invitations.rs, spaces_privacy.rs): outcomes, limits, epochs.

use tandem_server::spaces::SpaceLimits;
use tandem_server::storage::{Role, SpaceOutcome, Storage, UserRow};
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite::TestDb;

on_both_backends!(membership_primitives, limits_hold);

async fn user(storage: &Storage, email: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    assert!(storage
        .create_user(UserRow {
            id: id.clone(),
            email: email.to_string(),
            password_hash: "x".into(),
            created_at_ms: 1,
        })
        .await
        .unwrap());
    id
}

fn done<T: std::fmt::Debug>(outcome: SpaceOutcome<T>) -> T {
    match outcome {
        SpaceOutcome::Done(value) => value,
        other => panic!("expected Done, got {other:?}"),
    }
}

async fn membership_primitives(db: TestDb) {
    let storage = Storage::open(&db.url).await.unwrap();
    let limits = SpaceLimits::default();
    let a = user(&storage, "a@example.com").await;
    let b = user(&storage, "b@example.com").await;
    let (space, created) = done(
        storage
            .create_space(&a, "Family", "r1", 1000, limits)
            .await
            .unwrap(),
    );
    assert!(created);
    assert_eq!((space.role, space.member_count), (Role::Owner, 1));
    // The same request id: the same space.
    let (again, created) = done(
        storage
            .create_space(&a, "Family", "r1", 2000, limits)
            .await
            .unwrap(),
    );
    assert!(!created);
    assert_eq!(again.id, space.id);
    // B is nobody there yet.
    assert_eq!(
        storage.members(&b, &space.id).await.unwrap(),
        SpaceOutcome::NotFound
    );
    assert_eq!(
        storage
            .invite(&b, &space.id, "c@example.com", Role::Viewer, 1000, limits)
            .await
            .unwrap(),
        SpaceOutcome::NotFound
    );
    let (invitation, notify) = done(
        storage
            .invite(&a, &space.id, "b@example.com", Role::Viewer, 1000, limits)
            .await
            .unwrap(),
    );
    assert_eq!(notify, vec![b.clone()]);
    assert_eq!(invitation.email, "b@example.com");
    assert_eq!(invitation.invited_by_email, "a@example.com");
    assert_eq!(invitation.space_name, "Family");
    // Again: the same invitation, the new role.
    let (renewed, _) = done(
        storage
            .invite(&a, &space.id, "b@example.com", Role::Editor, 5000, limits)
            .await
            .unwrap(),
    );
    assert_eq!(renewed.id, invitation.id);
    assert_eq!(renewed.role, Role::Editor);
    assert!(renewed.expires_at_ms > invitation.expires_at_ms);
    // Only the invitee accepts.
    assert_eq!(
        storage
            .accept_invitation(&a, &invitation.id, 6000, limits)
            .await
            .unwrap(),
        SpaceOutcome::NotFound
    );
    let (joined, _) = done(
        storage
            .accept_invitation(&b, &invitation.id, 6000, limits)
            .await
            .unwrap(),
    );
    assert_eq!((joined.role, joined.member_count), (Role::Editor, 2));
    assert_eq!(
        storage
            .invite(&a, &space.id, "b@example.com", Role::Viewer, 7000, limits)
            .await
            .unwrap(),
        SpaceOutcome::AlreadyMember
    );
    // Editors do not manage; the last owner stays.
    assert_eq!(
        storage.rename_space(&b, &space.id, "X").await.unwrap(),
        SpaceOutcome::Forbidden
    );
    assert_eq!(
        storage.remove_member(&a, &space.id, &a).await.unwrap(),
        SpaceOutcome::LastOwner
    );
    assert_eq!(
        storage
            .set_role(&a, &space.id, &a, Role::Viewer)
            .await
            .unwrap(),
        SpaceOutcome::LastOwner
    );
    let members = done(storage.members(&b, &space.id).await.unwrap());
    assert_eq!(members.len(), 2);
    let (member, notify) = done(
        storage
            .set_role(&a, &space.id, &b, Role::Viewer)
            .await
            .unwrap(),
    );
    assert_eq!((member.role, notify), (Role::Viewer, vec![b.clone()]));
    // Leave, then deletion.
    done(storage.remove_member(&b, &space.id, &b).await.unwrap());
    assert_eq!(
        storage.members(&b, &space.id).await.unwrap(),
        SpaceOutcome::NotFound
    );
    done(
        storage
            .invite(&a, &space.id, "b@example.com", Role::Viewer, 8000, limits)
            .await
            .unwrap(),
    );
    let (_, concerned) = done(storage.delete_space(&a, &space.id, 9000).await.unwrap());
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(concerned, expected);
    assert_eq!(
        storage.members(&a, &space.id).await.unwrap(),
        SpaceOutcome::NotFound
    );
    assert_eq!(
        storage.delete_space(&a, &space.id, 9000).await.unwrap(),
        SpaceOutcome::NotFound
    );
}

async fn limits_hold(db: TestDb) {
    let storage = Storage::open(&db.url).await.unwrap();
    let limits = SpaceLimits {
        spaces_per_user: 1,
        members_per_space: 2,
        invitations_per_space: 1,
    };
    let a = user(&storage, "a@example.com").await;
    let b = user(&storage, "b@example.com").await;
    let c = user(&storage, "c@example.com").await;
    let (space, _) = done(
        storage
            .create_space(&a, "S", "r1", 1, limits)
            .await
            .unwrap(),
    );
    assert_eq!(
        storage
            .create_space(&a, "T", "r2", 1, limits)
            .await
            .unwrap(),
        SpaceOutcome::Limit
    );
    let (invitation, _) = done(
        storage
            .invite(&a, &space.id, "b@example.com", Role::Editor, 1, limits)
            .await
            .unwrap(),
    );
    assert_eq!(
        storage
            .invite(&a, &space.id, "c@example.com", Role::Editor, 1, limits)
            .await
            .unwrap(),
        SpaceOutcome::Limit
    );
    done(
        storage
            .accept_invitation(&b, &invitation.id, 2, limits)
            .await
            .unwrap(),
    );
    let (invitation, _) = done(
        storage
            .invite(&a, &space.id, "c@example.com", Role::Editor, 3, limits)
            .await
            .unwrap(),
    );
    assert_eq!(
        storage
            .accept_invitation(&c, &invitation.id, 4, limits)
            .await
            .unwrap(),
        SpaceOutcome::Limit
    );
    // Expired invitations answer as unknown ones.
    let (_, _) = done(
        storage
            .create_space(&c, "C's", "r3", 5, limits)
            .await
            .unwrap(),
    );
    assert_eq!(
        storage
            .accept_invitation(&c, &invitation.id, 4 + 15 * 24 * 3600 * 1000, limits)
            .await
            .unwrap(),
        SpaceOutcome::NotFound
    );
}
