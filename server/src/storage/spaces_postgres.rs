//! The membership primitives of docs/design/spaces.md §4 on PostgreSQL. A changing call locks the
//! space's `streams` row (`FOR UPDATE`, the row every push to the space locks too), then reads the
//! caller's membership and acts in the same transaction; then it raises the `user_epochs` of the
//! users concerned, in id order, and sends each an `account:<user id>` notice, delivered on
//! commit. Pushes never lock `user_epochs`, membership changes never lock `users`: no cycle.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use std::sync::Arc;

use super::postgres::{load_push_state, write_index_rows, write_plan, CHANGES_CHANNEL};
use super::{
    stored_role, InvitationRow, MemberRow, PostgresStore, Role, SpaceOutcome, SpaceRow,
    StorageError,
};
use super::{AdminWrite, PushJob};
use crate::push::PUBLIC_STREAM;
use crate::spaces::{admin, AdminOutcome, ADMIN_OP_USER};
use crate::spaces::{
    new_invitation_id, new_space_id, space_stream, SpaceLimits, INVITATION_TTL_MS,
};

/// `SpaceOutcome::Done` of a changing call, with the users whose account changed (poked).
use crate::spaces::Changed;

const SPACE_OF_MEMBER: &str = "SELECT s.id, s.name, m.role, s.created_at,
        (SELECT count(*) FROM members c WHERE c.space_id = s.id)
     FROM spaces s JOIN members m ON m.space_id = s.id
     WHERE s.id = $1 AND m.user_id = $2";

const SELECT_INVITATIONS: &str = "SELECT i.id, i.space_id, s.name, i.email, i.role,
        coalesce(u.email, ''), i.created_at, i.expires_at
     FROM invitations i JOIN spaces s ON s.id = i.space_id
     LEFT JOIN users u ON u.id = i.invited_by";

impl PostgresStore {
    pub async fn create_space(
        &self,
        user_id: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<SpaceOutcome<(SpaceRow, bool)>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The creator's epoch row first: concurrent creates of one user take turns, so the
        // limit holds and a retried request id finds the first one's space.
        bump_epochs(&tx, &[user_id.to_string()]).await?;
        let earlier = tx
            .query_opt(
                "SELECT id FROM spaces WHERE created_by = $1 AND request_id = $2",
                &[&user_id, &request_id],
            )
            .await?;
        if let Some(row) = earlier {
            let space_id: String = row.get(0);
            let space = space_of_member(&tx, &space_id, user_id).await?;
            // Nothing changed: the epoch bump is rolled back with the transaction.
            return Ok(match space {
                Some(space) => SpaceOutcome::Done((space, false)),
                None => SpaceOutcome::NotFound,
            });
        }
        if membership_count(&tx, user_id).await? >= limits.spaces_per_user {
            return Ok(SpaceOutcome::Limit);
        }
        let space_id = new_space_id();
        tx.execute(
            "INSERT INTO streams (id) VALUES ($1)",
            &[&space_stream(&space_id)],
        )
        .await?;
        tx.execute(
            "INSERT INTO spaces (id, name, created_by, created_at, request_id) VALUES ($1, $2, $3, $4, $5)",
            &[&space_id, &name, &user_id, &now_ms, &request_id],
        )
        .await?;
        tx.execute(
            "INSERT INTO members (space_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)",
            &[&space_id, &user_id, &now_ms],
        )
        .await?;
        notify_accounts(&tx, &[user_id.to_string()]).await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done((
            SpaceRow {
                id: space_id,
                name: name.to_string(),
                role: Role::Owner,
                member_count: 1,
                created_at_ms: now_ms,
            },
            true,
        )))
    }

    pub async fn rename_space(
        &self,
        user_id: &str,
        space_id: &str,
        name: &str,
    ) -> Result<Changed<SpaceRow>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Err(refused) = lock_and_require(&tx, space_id, user_id, true).await? {
            return Ok(refused);
        }
        tx.execute(
            "UPDATE spaces SET name = $2 WHERE id = $1",
            &[&space_id, &name],
        )
        .await?;
        let members = member_ids(&tx, space_id).await?;
        bump_epochs(&tx, &members).await?;
        notify_accounts(&tx, &members).await?;
        let space = space_of_member(&tx, space_id, user_id)
            .await?
            .ok_or_else(|| StorageError::Other("renamed space vanished".into()))?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done((space, members)))
    }

    pub async fn delete_space(
        &self,
        user_id: &str,
        space_id: &str,
        now_ms: i64,
    ) -> Result<Changed<()>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Err(refused) = lock_and_require(&tx, space_id, user_id, true).await? {
            return Ok(refused);
        }
        tx.execute(
            "UPDATE streams SET deleted_at = $2 WHERE id = $1",
            &[&space_stream(space_id), &now_ms],
        )
        .await?;
        let mut concerned = member_ids(&tx, space_id).await?;
        let invitees = tx
            .query(
                "SELECT u.id FROM invitations i JOIN users u ON u.email = i.email WHERE i.space_id = $1",
                &[&space_id],
            )
            .await?;
        concerned.extend(invitees.iter().map(|r| r.get::<_, String>(0)));
        concerned.sort();
        concerned.dedup();
        tx.execute("DELETE FROM members WHERE space_id = $1", &[&space_id])
            .await?;
        tx.execute("DELETE FROM invitations WHERE space_id = $1", &[&space_id])
            .await?;
        tx.execute("DELETE FROM spaces WHERE id = $1", &[&space_id])
            .await?;
        bump_epochs(&tx, &concerned).await?;
        notify_accounts(&tx, &concerned).await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done(((), concerned)))
    }

    pub async fn members(
        &self,
        user_id: &str,
        space_id: &str,
    ) -> Result<SpaceOutcome<Vec<MemberRow>>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        if role_of(&tx, space_id, user_id).await?.is_none() {
            return Ok(SpaceOutcome::NotFound);
        }
        let rows = tx
            .query(
                "SELECT m.user_id, coalesce(u.email, ''), m.role, m.joined_at
                 FROM members m LEFT JOIN users u ON u.id = m.user_id
                 WHERE m.space_id = $1 ORDER BY m.joined_at, m.user_id",
                &[&space_id],
            )
            .await?;
        tx.commit().await?;
        let members = rows
            .iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: r.get(0),
                    email: r.get(1),
                    role: stored_role(r.get(2))?,
                    joined_at_ms: r.get(3),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(SpaceOutcome::Done(members))
    }

    pub async fn set_role(
        &self,
        user_id: &str,
        space_id: &str,
        member_id: &str,
        role: Role,
    ) -> Result<Changed<MemberRow>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Err(refused) = lock_and_require(&tx, space_id, user_id, true).await? {
            return Ok(refused);
        }
        let Some(current) = role_of(&tx, space_id, member_id).await? else {
            return Ok(SpaceOutcome::NotFound);
        };
        if current == Role::Owner && role != Role::Owner && owner_count(&tx, space_id).await? <= 1 {
            return Ok(SpaceOutcome::LastOwner);
        }
        let row = tx
            .query_one(
                "UPDATE members m SET role = $3 WHERE m.space_id = $1 AND m.user_id = $2
                 RETURNING coalesce((SELECT u.email FROM users u WHERE u.id = m.user_id), ''),
                           m.joined_at",
                &[&space_id, &member_id, &role.as_str()],
            )
            .await?;
        let notify = if current == role {
            Vec::new()
        } else {
            vec![member_id.to_string()]
        };
        bump_epochs(&tx, &notify).await?;
        notify_accounts(&tx, &notify).await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done((
            MemberRow {
                user_id: member_id.to_string(),
                email: row.get(0),
                role,
                joined_at_ms: row.get(1),
            },
            notify,
        )))
    }

    pub async fn remove_member(
        &self,
        user_id: &str,
        space_id: &str,
        member_id: &str,
    ) -> Result<Changed<()>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let leaving = user_id == member_id;
        if let Err(refused) = lock_and_require(&tx, space_id, user_id, !leaving).await? {
            return Ok(refused);
        }
        let Some(current) = role_of(&tx, space_id, member_id).await? else {
            return Ok(SpaceOutcome::NotFound);
        };
        if current == Role::Owner && owner_count(&tx, space_id).await? <= 1 {
            return Ok(SpaceOutcome::LastOwner);
        }
        tx.execute(
            "DELETE FROM members WHERE space_id = $1 AND user_id = $2",
            &[&space_id, &member_id],
        )
        .await?;
        // Every member's account shows the member count; the one who left loses the space.
        let mut notify = member_ids(&tx, space_id).await?;
        notify.push(member_id.to_string());
        bump_epochs(&tx, &notify).await?;
        notify_accounts(&tx, &notify).await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done(((), notify)))
    }

    pub async fn invite(
        &self,
        user_id: &str,
        space_id: &str,
        email: &str,
        role: Role,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<Changed<InvitationRow>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Err(refused) = lock_and_require(&tx, space_id, user_id, true).await? {
            return Ok(refused);
        }
        let invitee: Option<String> = tx
            .query_opt("SELECT id FROM users WHERE email = $1", &[&email])
            .await?
            .map(|r| r.get(0));
        if let Some(invitee) = &invitee {
            if role_of(&tx, space_id, invitee).await?.is_some() {
                return Ok(SpaceOutcome::AlreadyMember);
            }
        }
        tx.execute(
            "DELETE FROM invitations WHERE space_id = $1 AND expires_at <= $2",
            &[&space_id, &now_ms],
        )
        .await?;
        let pending: i64 = tx
            .query_one(
                "SELECT count(*) FROM invitations WHERE space_id = $1 AND email <> $2",
                &[&space_id, &email],
            )
            .await?
            .get(0);
        if pending >= limits.invitations_per_space {
            return Ok(SpaceOutcome::Limit);
        }
        let expires_at = now_ms + INVITATION_TTL_MS;
        tx.execute(
            "INSERT INTO invitations (id, space_id, email, role, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (space_id, email) DO UPDATE SET role = excluded.role,
               invited_by = excluded.invited_by, created_at = excluded.created_at,
               expires_at = excluded.expires_at",
            &[&new_invitation_id(), &space_id, &email, &role.as_str(), &user_id, &now_ms, &expires_at],
        )
        .await?;
        let notify: Vec<String> = invitee.into_iter().collect();
        bump_epochs(&tx, &notify).await?;
        notify_accounts(&tx, &notify).await?;
        let invitation = invitations_where(
            &tx,
            "i.space_id = $1 AND i.email = $2",
            &[&space_id, &email],
        )
        .await?
        .pop()
        .ok_or_else(|| StorageError::Other("invitation vanished".into()))?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done((invitation, notify)))
    }

    pub async fn space_invitations(
        &self,
        user_id: &str,
        space_id: &str,
        now_ms: i64,
    ) -> Result<SpaceOutcome<Vec<InvitationRow>>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        match role_of(&tx, space_id, user_id).await? {
            None => return Ok(SpaceOutcome::NotFound),
            Some(role) if !role.can_manage() => return Ok(SpaceOutcome::Forbidden),
            Some(_) => {}
        }
        let list = invitations_where(
            &tx,
            "i.space_id = $1 AND i.expires_at > $2 ORDER BY i.created_at, i.id",
            &[&space_id, &now_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done(list))
    }

    pub async fn revoke_invitation(
        &self,
        user_id: &str,
        space_id: &str,
        invitation_id: &str,
    ) -> Result<Changed<()>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Err(refused) = lock_and_require(&tx, space_id, user_id, true).await? {
            return Ok(refused);
        }
        let rows = tx
            .query(
                "DELETE FROM invitations i WHERE i.id = $1 AND i.space_id = $2
                 RETURNING (SELECT u.id FROM users u WHERE u.email = i.email)",
                &[&invitation_id, &space_id],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(SpaceOutcome::NotFound);
        };
        let notify: Vec<String> = row.get::<_, Option<String>>(0).into_iter().collect();
        bump_epochs(&tx, &notify).await?;
        notify_accounts(&tx, &notify).await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done(((), notify)))
    }

    pub async fn accept_invitation(
        &self,
        user_id: &str,
        invitation_id: &str,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<Changed<SpaceRow>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some((space_id, _)) = own_invitation(&tx, user_id, invitation_id, now_ms).await? else {
            return Ok(SpaceOutcome::NotFound);
        };
        // The space's lock, then the invitation again: it may have been revoked or the space
        // deleted while this transaction waited.
        if !lock_stream(&tx, &space_id).await? {
            return Ok(SpaceOutcome::NotFound);
        }
        let Some((space_id, role)) = own_invitation(&tx, user_id, invitation_id, now_ms).await?
        else {
            return Ok(SpaceOutcome::NotFound);
        };
        if role_of(&tx, &space_id, user_id).await?.is_none() {
            if membership_count(&tx, user_id).await? >= limits.spaces_per_user {
                return Ok(SpaceOutcome::Limit);
            }
            let members: i64 = tx
                .query_one(
                    "SELECT count(*) FROM members WHERE space_id = $1",
                    &[&space_id],
                )
                .await?
                .get(0);
            if members >= limits.members_per_space {
                return Ok(SpaceOutcome::Limit);
            }
            tx.execute(
                "INSERT INTO members (space_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
                &[&space_id, &user_id, &role.as_str(), &now_ms],
            )
            .await?;
        }
        tx.execute("DELETE FROM invitations WHERE id = $1", &[&invitation_id])
            .await?;
        // Every member's account shows the member count, the newcomer's the space.
        let notify = member_ids(&tx, &space_id).await?;
        bump_epochs(&tx, &notify).await?;
        notify_accounts(&tx, &notify).await?;
        let space = space_of_member(&tx, &space_id, user_id)
            .await?
            .ok_or_else(|| StorageError::Other("joined space vanished".into()))?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done((space, notify)))
    }

    pub async fn decline_invitation(
        &self,
        user_id: &str,
        invitation_id: &str,
        now_ms: i64,
    ) -> Result<Changed<()>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some((space_id, _)) = own_invitation(&tx, user_id, invitation_id, now_ms).await? else {
            return Ok(SpaceOutcome::NotFound);
        };
        if !lock_stream(&tx, &space_id).await? {
            return Ok(SpaceOutcome::NotFound);
        }
        let deleted = tx
            .execute("DELETE FROM invitations WHERE id = $1", &[&invitation_id])
            .await?;
        if deleted == 0 {
            return Ok(SpaceOutcome::NotFound);
        }
        let notify = vec![user_id.to_string()];
        bump_epochs(&tx, &notify).await?;
        notify_accounts(&tx, &notify).await?;
        tx.commit().await?;
        Ok(SpaceOutcome::Done(((), notify)))
    }
}

/// Locks the live space's stream row; `false` when there is no such live space.
async fn lock_stream(tx: &Transaction<'_>, space_id: &str) -> Result<bool, StorageError> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM streams WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&space_stream(space_id)],
        )
        .await?;
    Ok(row.is_some())
}

/// Locks the space's stream row and checks the caller's membership under it: `Ok(Ok(role))` for
/// a member (an owner, when `manage`), else the refusal (not a member or no such space:
/// `NotFound`, checked before anything else; a member without the right: `Forbidden`).
async fn lock_and_require<T>(
    tx: &Transaction<'_>,
    space_id: &str,
    user_id: &str,
    manage: bool,
) -> Result<Result<Role, SpaceOutcome<T>>, StorageError> {
    if !lock_stream(tx, space_id).await? {
        return Ok(Err(SpaceOutcome::NotFound));
    }
    Ok(match role_of(tx, space_id, user_id).await? {
        None => Err(SpaceOutcome::NotFound),
        Some(role) if manage && !role.can_manage() => Err(SpaceOutcome::Forbidden),
        Some(role) => Ok(role),
    })
}

/// The role of `user_id` in the live space `space_id`, if a member.
async fn role_of(
    client: &impl GenericClient,
    space_id: &str,
    user_id: &str,
) -> Result<Option<Role>, StorageError> {
    let statement = client
        .prepare_cached(
            "SELECT m.role FROM members m JOIN streams s ON s.id = 'space:' || m.space_id
             WHERE m.space_id = $1 AND m.user_id = $2 AND s.deleted_at IS NULL",
        )
        .await?;
    let row = client.query_opt(&statement, &[&space_id, &user_id]).await?;
    row.map(|r| stored_role(r.get(0))).transpose()
}

async fn space_of_member(
    client: &impl GenericClient,
    space_id: &str,
    user_id: &str,
) -> Result<Option<SpaceRow>, StorageError> {
    let row = client
        .query_opt(SPACE_OF_MEMBER, &[&space_id, &user_id])
        .await?;
    row.map(|r| {
        Ok(SpaceRow {
            id: r.get(0),
            name: r.get(1),
            role: stored_role(r.get(2))?,
            created_at_ms: r.get(3),
            member_count: r.get(4),
        })
    })
    .transpose()
}

async fn membership_count(client: &impl GenericClient, user_id: &str) -> Result<i64, StorageError> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM members WHERE user_id = $1",
            &[&user_id],
        )
        .await?
        .get(0))
}

async fn owner_count(client: &impl GenericClient, space_id: &str) -> Result<i64, StorageError> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM members WHERE space_id = $1 AND role = 'owner'",
            &[&space_id],
        )
        .await?
        .get(0))
}

async fn member_ids(
    client: &impl GenericClient,
    space_id: &str,
) -> Result<Vec<String>, StorageError> {
    Ok(client
        .query(
            "SELECT user_id FROM members WHERE space_id = $1 ORDER BY user_id",
            &[&space_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

async fn invitations_where(
    client: &impl GenericClient,
    condition: &str,
    values: &[&(dyn ToSql + Sync)],
) -> Result<Vec<InvitationRow>, StorageError> {
    let rows = client
        .query(&format!("{SELECT_INVITATIONS} WHERE {condition}"), values)
        .await?;
    rows.iter().map(super::postgres::invitation_of).collect()
}

/// See the SQLite backend's `own_invitation`.
async fn own_invitation(
    client: &impl GenericClient,
    user_id: &str,
    invitation_id: &str,
    now_ms: i64,
) -> Result<Option<(String, Role)>, StorageError> {
    let row = client
        .query_opt(
            "SELECT i.space_id, i.role FROM invitations i
             JOIN users u ON u.email = i.email
             JOIN streams s ON s.id = 'space:' || i.space_id
             WHERE i.id = $1 AND u.id = $2 AND i.expires_at > $3 AND s.deleted_at IS NULL",
            &[&invitation_id, &user_id, &now_ms],
        )
        .await?;
    row.map(|r| Ok((r.get(0), stored_role(r.get(1))?)))
        .transpose()
}

/// Raises the `account_seq` of each of `user_ids`, locking their rows in id order.
pub(super) async fn bump_epochs(
    client: &impl GenericClient,
    user_ids: &[String],
) -> Result<(), StorageError> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&str> = user_ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    client
        .execute(
            "INSERT INTO user_epochs (user_id, account_seq)
             SELECT u, 1 FROM UNNEST($1::text[]) AS x(u) ORDER BY u
             ON CONFLICT (user_id) DO UPDATE SET account_seq = user_epochs.account_seq + 1",
            &[&sorted],
        )
        .await?;
    Ok(())
}

/// Sends `account:<user id>` for each of `user_ids`, delivered to every instance on commit.
pub(super) async fn notify_accounts(
    client: &impl GenericClient,
    user_ids: &[String],
) -> Result<(), StorageError> {
    if user_ids.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "SELECT pg_notify($1, 'account:' || u) FROM UNNEST($2::text[]) AS x(u)",
            &[&CHANGES_CHANNEL, &user_ids],
        )
        .await?;
    Ok(())
}

impl PostgresStore {
    /// See `Storage::admin_write`: one transaction under the `public` stream's row lock, one
    /// NOTIFY `public:<seq>` when anything changed.
    pub async fn admin_write(
        &self,
        schema: &tandem_protocol::Schema,
        writes: Vec<AdminWrite>,
        now_ms: i64,
    ) -> Result<AdminOutcome, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "SELECT change_seq, purged_seq FROM streams WHERE id = 'public' FOR UPDATE",
                &[],
            )
            .await?;
        let mut streams = admin::streams(row.get(0), row.get(1));
        let schema = Arc::new(schema.clone());
        let probe = PushJob {
            user_id: ADMIN_OP_USER.to_string(),
            mutations: admin::probe(&writes),
            schema: schema.clone(),
            now_ms,
            client_id: ADMIN_OP_USER.to_string(),
        };
        let public = |stream: &str| stream == PUBLIC_STREAM;
        let loaded = load_push_state(&tx, &probe, &public, false).await?;
        let hashes = crate::push::new_attachment_hashes(
            &schema,
            ADMIN_OP_USER,
            &probe.mutations,
            &loaded.records,
            public,
        );
        streams.readable_blobs = super::record_blobs_postgres::complete_blobs(&tx, &hashes).await?;
        let (plan, results) = match admin::plan(&schema, &writes, loaded.records, &streams, now_ms)
        {
            Ok(planned) => planned,
            Err(why) => return Ok(Err(why)),
        };
        let new_seq = admin::new_seq(&plan);
        if new_seq.is_some() {
            for (stream, writes) in plan.writes_by_stream() {
                write_index_rows(&tx, &schema, stream, writes).await?;
            }
            write_plan(&tx, ADMIN_OP_USER, &plan, &loaded.stored_seqs, now_ms, None).await?;
            tx.commit().await?;
        }
        Ok(Ok((results, new_seq)))
    }

    /// The ids of the live public records of `collection`.
    pub async fn public_ids(&self, collection: &str) -> Result<Vec<String>, StorageError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT entity_id FROM records
                 WHERE user_id = 'public' AND entity = $1 AND NOT deleted ORDER BY entity_id",
                &[&collection],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
