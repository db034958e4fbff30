//! The spaces half of `Tandem` (docs/design/spaces.md §10): shared spaces, their members and
//! roles, invitations, and writes into a space. A thin layer over `tandem_core::Client`'s space
//! calls: the management calls are online (`async`, like sign-in; offline they fail with
//! `Sync { kind: Offline }`), the reads and observers work from the local copy the last sync or
//! space call left, and records are written into a space offline like any other.

use std::sync::Arc;

use super::error::TandemError;
use super::types::{Invitation, Member, Record, SentInvitation, Space, SpaceRole, WriteOp};
use super::{Subscription, Tandem};

/// Receives the user's spaces: the current list right after `observe_spaces`, then after every
/// change (created, accepted, renamed, a role changed, left, removed, deleted), whether by a
/// space call here or by a sync. Called on Tandem's notification thread.
#[uniffi::export(with_foreign)]
pub trait SpacesObserver: Send + Sync {
    fn on_spaces(&self, spaces: Vec<Space>);
}

/// Receives the invitations waiting for the user: the current list right after
/// `observe_invitations`, then after every change. Called on Tandem's notification thread.
#[uniffi::export(with_foreign)]
pub trait InvitationsObserver: Send + Sync {
    fn on_invitations(&self, invitations: Vec<Invitation>);
}

#[uniffi::export]
impl Tandem {
    /// Creates a space named `name` (1 to 200 characters) with the user as its owner. A retry
    /// after a lost answer returns the same space, never a second one.
    pub async fn create_space(&self, name: String) -> Result<Space, TandemError> {
        self.on_runtime(|client| async move { Ok(client.create_space(&name).await?.into()) })
            .await
    }

    /// Renames a space (owner).
    pub async fn rename_space(&self, space_id: String, name: String) -> Result<Space, TandemError> {
        self.on_runtime(
            |client| async move { Ok(client.rename_space(&space_id, &name).await?.into()) },
        )
        .await
    }

    /// Deletes a space for every member (owner). Its records leave this device at once, except
    /// those with unsent changes, which stay as `Forbidden` dead letters (`rejected()`) until
    /// discarded.
    pub async fn delete_space(&self, space_id: String) -> Result<(), TandemError> {
        self.on_runtime(|client| async move { Ok(client.delete_space(&space_id).await?) })
            .await
    }

    /// The user's spaces as the last sync or space call saw them, by name (offline too).
    pub fn spaces(&self) -> Result<Vec<Space>, TandemError> {
        self.call(|client| Ok(client.spaces()?.into_iter().map(Space::from).collect()))
    }

    /// Tells `observer` the user's spaces right away, then after every change of them, until
    /// the subscription is cancelled or dropped.
    pub fn observe_spaces(
        &self,
        observer: Arc<dyn SpacesObserver>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let handle = client.observe_spaces(Box::new(move |spaces| {
                observer.on_spaces(spaces.into_iter().map(Space::from).collect())
            }));
            Ok(Subscription::new(handle))
        })
    }

    /// Invites `email` to a space with `role` (owner). Inviting the same email again renews the
    /// invitation with the new role; an email without an account sees it once it signs up.
    /// Fails `Space { kind: AlreadyMember }` for a member's email.
    pub async fn invite(
        &self,
        space_id: String,
        email: String,
        role: SpaceRole,
    ) -> Result<SentInvitation, TandemError> {
        self.on_runtime(|client| async move {
            Ok(client.invite(&space_id, &email, role.into()).await?.into())
        })
        .await
    }

    /// The invitations waiting for the user's answer, oldest first, as the last sync saw them
    /// (offline too).
    pub fn invitations(&self) -> Result<Vec<Invitation>, TandemError> {
        self.call(|client| {
            Ok(client
                .invitations()?
                .into_iter()
                .map(Invitation::from)
                .collect())
        })
    }

    /// Tells `observer` the pending invitations right away, then after every change of them,
    /// until the subscription is cancelled or dropped.
    pub fn observe_invitations(
        &self,
        observer: Arc<dyn InvitationsObserver>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let handle = client.observe_invitations(Box::new(move |invitations| {
                observer.on_invitations(invitations.into_iter().map(Invitation::from).collect())
            }));
            Ok(Subscription::new(handle))
        })
    }

    /// Accepts an invitation: the space is the user's at once (`spaces()` lists it) and a sync
    /// brings its records.
    pub async fn accept(&self, invitation_id: String) -> Result<Space, TandemError> {
        self.on_runtime(|client| async move { Ok(client.accept(&invitation_id).await?.into()) })
            .await
    }

    /// Declines an invitation.
    pub async fn decline(&self, invitation_id: String) -> Result<(), TandemError> {
        self.on_runtime(|client| async move { Ok(client.decline(&invitation_id).await?) })
            .await
    }

    /// The members of a space (any member; online).
    pub async fn members(&self, space_id: String) -> Result<Vec<Member>, TandemError> {
        self.on_runtime(|client| async move {
            Ok(client
                .members(&space_id)
                .await?
                .into_iter()
                .map(Member::from)
                .collect())
        })
        .await
    }

    /// Changes a member's role (owner). A space always keeps an owner: demoting the last one
    /// fails `Space { kind: LastOwner }`.
    pub async fn set_role(
        &self,
        space_id: String,
        user_id: String,
        role: SpaceRole,
    ) -> Result<Member, TandemError> {
        self.on_runtime(|client| async move {
            Ok(client
                .set_role(&space_id, &user_id, role.into())
                .await?
                .into())
        })
        .await
    }

    /// Removes a member (owner). Their devices drop the space's records on their next sync,
    /// keeping any unsent change as a `Forbidden` dead letter.
    pub async fn remove_member(
        &self,
        space_id: String,
        user_id: String,
    ) -> Result<(), TandemError> {
        self.on_runtime(
            |client| async move { Ok(client.remove_member(&space_id, &user_id).await?) },
        )
        .await
    }

    /// Leaves a space (the last owner cannot: `Space { kind: LastOwner }`). Its records leave
    /// this device at once, except those with unsent changes, which stay as `Forbidden` dead
    /// letters.
    pub async fn leave(&self, space_id: String) -> Result<(), TandemError> {
        self.on_runtime(|client| async move { Ok(client.leave(&space_id).await?) })
            .await
    }

    /// Creates or replaces a whole document of a `space`-scoped collection in `space_id`
    /// (`put` with a space); generates a UUID v7 id when `id` is absent. Works offline. Fails
    /// `Validation` with `UnknownSpace` (not a space of the user's here), `Forbidden` (a viewer)
    /// or `SpaceMismatch` (the record or its parent is in another space, or the collection is
    /// not space-scoped).
    pub fn put_in_space(
        &self,
        space_id: String,
        collection: String,
        id: Option<String>,
        json: String,
    ) -> Result<Record, TandemError> {
        self.write_one(WriteOp::Put {
            collection,
            id,
            json,
            space_id: Some(space_id),
        })
    }
}
