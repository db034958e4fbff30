//! The membership primitives of docs/design/spaces.md §4 on SQLite. Every call that changes
//! something is one `BEGIN IMMEDIATE` transaction: SQLite's single writer is the stream-row lock
//! of the design's lock order, so the caller's membership read in it holds until commit.
//! Calls that only read run in one read transaction (one snapshot).

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use std::sync::Arc;

use super::sqlite::{load_push_state, write_plan};
use super::{
    stored_role, AdminWrite, InvitationRow, MemberRow, PushJob, Role, SpaceOutcome, SpaceRow,
    SqliteStore, StorageError,
};
use crate::spaces::{
    admin, new_invitation_id, new_space_id, space_stream, AdminOutcome, Changed, SpaceLimits,
    ADMIN_OP_USER, INVITATION_TTL_MS,
};

const SPACE_OF_MEMBER: &str = "SELECT s.id, s.name, m.role, s.created_at,
        (SELECT count(*) FROM members c WHERE c.space_id = s.id)
     FROM spaces s JOIN members m ON m.space_id = s.id
     WHERE s.id = ?1 AND m.user_id = ?2";

const SELECT_INVITATIONS: &str = "SELECT i.id, i.space_id, s.name, i.email, i.role,
        coalesce(u.email, ''), i.created_at, i.expires_at
     FROM invitations i JOIN spaces s ON s.id = i.space_id
     LEFT JOIN users u ON u.id = i.invited_by";

impl SqliteStore {
    pub async fn create_space(
        &self,
        user_id: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<SpaceOutcome<(SpaceRow, bool)>, StorageError> {
        let (user_id, name, request_id) = (
            user_id.to_string(),
            name.to_string(),
            request_id.to_string(),
        );
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let earlier: Option<String> = tx
                .query_row(
                    "SELECT id FROM spaces WHERE created_by = ?1 AND request_id = ?2",
                    params![user_id, request_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(space_id) = earlier {
                // A retry after a lost answer: the same space, if the creator still belongs to it.
                return Ok(match space_of_member(&tx, &space_id, &user_id)? {
                    Some(space) => SpaceOutcome::Done((space, false)),
                    None => SpaceOutcome::NotFound,
                });
            }
            if membership_count(&tx, &user_id)? >= limits.spaces_per_user {
                return Ok(SpaceOutcome::Limit);
            }
            let space_id = new_space_id();
            tx.execute(
                "INSERT INTO streams (id) VALUES (?1)",
                [space_stream(&space_id)],
            )?;
            tx.execute(
                "INSERT INTO spaces (id, name, created_by, created_at, request_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![space_id, name, user_id, now_ms, request_id],
            )?;
            tx.execute(
                "INSERT INTO members (space_id, user_id, role, joined_at) VALUES (?1, ?2, 'owner', ?3)",
                params![space_id, user_id, now_ms],
            )?;
            bump_epochs(&tx, std::slice::from_ref(&user_id))?;
            tx.commit()?;
            Ok(SpaceOutcome::Done((
                SpaceRow {
                    id: space_id,
                    name,
                    role: Role::Owner,
                    member_count: 1,
                    created_at_ms: now_ms,
                },
                true,
            )))
        })
        .await
    }

    pub async fn rename_space(
        &self,
        user_id: &str,
        space_id: &str,
        name: &str,
    ) -> Result<Changed<SpaceRow>, StorageError> {
        let (user_id, space_id, name) =
            (user_id.to_string(), space_id.to_string(), name.to_string());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Err(refused) = require(&tx, &space_id, &user_id, true)? {
                return Ok(refused);
            }
            tx.execute(
                "UPDATE spaces SET name = ?2 WHERE id = ?1",
                params![space_id, name],
            )?;
            // Every member's account section shows the name.
            let members = member_ids(&tx, &space_id)?;
            bump_epochs(&tx, &members)?;
            let space = space_of_member(&tx, &space_id, &user_id)?
                .ok_or_else(|| StorageError::Other("renamed space vanished".into()))?;
            tx.commit()?;
            Ok(SpaceOutcome::Done((space, members)))
        })
        .await
    }

    pub async fn delete_space(
        &self,
        user_id: &str,
        space_id: &str,
        now_ms: i64,
    ) -> Result<Changed<()>, StorageError> {
        let (user_id, space_id) = (user_id.to_string(), space_id.to_string());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Err(refused) = require(&tx, &space_id, &user_id, true)? {
                return Ok(refused);
            }
            // The records stay until the purge task deletes them; no member can reach them now.
            tx.execute(
                "UPDATE streams SET deleted_at = ?2 WHERE id = ?1",
                params![space_stream(&space_id), now_ms],
            )?;
            let mut concerned = member_ids(&tx, &space_id)?;
            concerned.extend(invitee_ids(&tx, "i.space_id = ?1", params![space_id])?);
            concerned.sort();
            concerned.dedup();
            tx.execute("DELETE FROM members WHERE space_id = ?1", [&space_id])?;
            tx.execute("DELETE FROM invitations WHERE space_id = ?1", [&space_id])?;
            tx.execute("DELETE FROM spaces WHERE id = ?1", [&space_id])?;
            bump_epochs(&tx, &concerned)?;
            tx.commit()?;
            Ok(SpaceOutcome::Done(((), concerned)))
        })
        .await
    }

    pub async fn members(
        &self,
        user_id: &str,
        space_id: &str,
    ) -> Result<SpaceOutcome<Vec<MemberRow>>, StorageError> {
        let (user_id, space_id) = (user_id.to_string(), space_id.to_string());
        self.read(move |conn| {
            let tx = conn.transaction()?;
            if role_of(&tx, &space_id, &user_id)?.is_none() {
                return Ok(SpaceOutcome::NotFound);
            }
            let members = tx
                .prepare_cached(
                    "SELECT m.user_id, coalesce(u.email, ''), m.role, m.joined_at
                     FROM members m LEFT JOIN users u ON u.id = m.user_id
                     WHERE m.space_id = ?1 ORDER BY m.joined_at, m.user_id",
                )?
                .query_map([&space_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })?
                .map(|row| {
                    let (user_id, email, role, joined_at_ms) = row?;
                    Ok(MemberRow {
                        user_id,
                        email,
                        role: stored_role(&role)?,
                        joined_at_ms,
                    })
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            Ok(SpaceOutcome::Done(members))
        })
        .await
    }

    pub async fn set_role(
        &self,
        user_id: &str,
        space_id: &str,
        member_id: &str,
        role: Role,
    ) -> Result<Changed<MemberRow>, StorageError> {
        let (user_id, space_id, member_id) = (
            user_id.to_string(),
            space_id.to_string(),
            member_id.to_string(),
        );
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Err(refused) = require(&tx, &space_id, &user_id, true)? {
                return Ok(refused);
            }
            let Some(current) = role_of(&tx, &space_id, &member_id)? else {
                return Ok(SpaceOutcome::NotFound);
            };
            if current == Role::Owner && role != Role::Owner && owner_count(&tx, &space_id)? <= 1 {
                return Ok(SpaceOutcome::LastOwner);
            }
            tx.execute(
                "UPDATE members SET role = ?3 WHERE space_id = ?1 AND user_id = ?2",
                params![space_id, member_id, role.as_str()],
            )?;
            let notify = if current == role {
                Vec::new()
            } else {
                vec![member_id.clone()]
            };
            bump_epochs(&tx, &notify)?;
            let member = tx.query_row(
                "SELECT m.user_id, coalesce(u.email, ''), m.role, m.joined_at
                 FROM members m LEFT JOIN users u ON u.id = m.user_id
                 WHERE m.space_id = ?1 AND m.user_id = ?2",
                params![space_id, member_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )?;
            tx.commit()?;
            Ok(SpaceOutcome::Done((
                MemberRow {
                    user_id: member.0,
                    email: member.1,
                    role,
                    joined_at_ms: member.2,
                },
                notify,
            )))
        })
        .await
    }

    pub async fn remove_member(
        &self,
        user_id: &str,
        space_id: &str,
        member_id: &str,
    ) -> Result<Changed<()>, StorageError> {
        let (user_id, space_id, member_id) = (
            user_id.to_string(),
            space_id.to_string(),
            member_id.to_string(),
        );
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let leaving = user_id == member_id;
            if let Err(refused) = require(&tx, &space_id, &user_id, !leaving)? {
                return Ok(refused);
            }
            let Some(current) = role_of(&tx, &space_id, &member_id)? else {
                return Ok(SpaceOutcome::NotFound);
            };
            if current == Role::Owner && owner_count(&tx, &space_id)? <= 1 {
                return Ok(SpaceOutcome::LastOwner);
            }
            tx.execute(
                "DELETE FROM members WHERE space_id = ?1 AND user_id = ?2",
                params![space_id, member_id],
            )?;
            // Every member's account shows the member count; the one who left loses the space.
            let mut notify = member_ids(&tx, &space_id)?;
            notify.push(member_id);
            bump_epochs(&tx, &notify)?;
            tx.commit()?;
            Ok(SpaceOutcome::Done(((), notify)))
        })
        .await
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
        let (user_id, space_id, email) =
            (user_id.to_string(), space_id.to_string(), email.to_string());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Err(refused) = require(&tx, &space_id, &user_id, true)? {
                return Ok(refused);
            }
            let invitee: Option<String> = tx
                .query_row("SELECT id FROM users WHERE email = ?1", [&email], |r| r.get(0))
                .optional()?;
            if let Some(invitee) = &invitee {
                if role_of(&tx, &space_id, invitee)?.is_some() {
                    return Ok(SpaceOutcome::AlreadyMember);
                }
            }
            tx.execute(
                "DELETE FROM invitations WHERE space_id = ?1 AND expires_at <= ?2",
                params![space_id, now_ms],
            )?;
            let pending: i64 = tx.query_row(
                "SELECT count(*) FROM invitations WHERE space_id = ?1 AND email <> ?2",
                params![space_id, email],
                |r| r.get(0),
            )?;
            if pending >= limits.invitations_per_space {
                return Ok(SpaceOutcome::Limit);
            }
            // Inviting again keeps the invitation's id, and updates its role and expiry.
            tx.execute(
                "INSERT INTO invitations (id, space_id, email, role, invited_by, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (space_id, email) DO UPDATE SET role = excluded.role,
                   invited_by = excluded.invited_by, created_at = excluded.created_at,
                   expires_at = excluded.expires_at",
                params![new_invitation_id(), space_id, email, role.as_str(), user_id, now_ms, now_ms + INVITATION_TTL_MS],
            )?;
            let notify: Vec<String> = invitee.into_iter().collect();
            bump_epochs(&tx, &notify)?;
            let invitation = invitations_where(&tx, "i.space_id = ?1 AND i.email = ?2", params![space_id, email])?
                .pop()
                .ok_or_else(|| StorageError::Other("invitation vanished".into()))?;
            tx.commit()?;
            Ok(SpaceOutcome::Done((invitation, notify)))
        })
        .await
    }

    pub async fn space_invitations(
        &self,
        user_id: &str,
        space_id: &str,
        now_ms: i64,
    ) -> Result<SpaceOutcome<Vec<InvitationRow>>, StorageError> {
        let (user_id, space_id) = (user_id.to_string(), space_id.to_string());
        self.read(move |conn| {
            let tx = conn.transaction()?;
            if let Err(refused) = require(&tx, &space_id, &user_id, true)? {
                return Ok(refused);
            }
            let list = invitations_where(
                &tx,
                "i.space_id = ?1 AND i.expires_at > ?2 ORDER BY i.created_at, i.id",
                params![space_id, now_ms],
            )?;
            Ok(SpaceOutcome::Done(list))
        })
        .await
    }

    pub async fn revoke_invitation(
        &self,
        user_id: &str,
        space_id: &str,
        invitation_id: &str,
    ) -> Result<Changed<()>, StorageError> {
        let (user_id, space_id, invitation_id) = (
            user_id.to_string(),
            space_id.to_string(),
            invitation_id.to_string(),
        );
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Err(refused) = require(&tx, &space_id, &user_id, true)? {
                return Ok(refused);
            }
            let notify = invitee_ids(
                &tx,
                "i.id = ?1 AND i.space_id = ?2",
                params![invitation_id, space_id],
            )?;
            let deleted = tx.execute(
                "DELETE FROM invitations WHERE id = ?1 AND space_id = ?2",
                params![invitation_id, space_id],
            )?;
            if deleted == 0 {
                return Ok(SpaceOutcome::NotFound);
            }
            bump_epochs(&tx, &notify)?;
            tx.commit()?;
            Ok(SpaceOutcome::Done(((), notify)))
        })
        .await
    }

    pub async fn accept_invitation(
        &self,
        user_id: &str,
        invitation_id: &str,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<Changed<SpaceRow>, StorageError> {
        let (user_id, invitation_id) = (user_id.to_string(), invitation_id.to_string());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some((space_id, role)) = own_invitation(&tx, &user_id, &invitation_id, now_ms)? else {
                return Ok(SpaceOutcome::NotFound);
            };
            if role_of(&tx, &space_id, &user_id)?.is_none() {
                if membership_count(&tx, &user_id)? >= limits.spaces_per_user {
                    return Ok(SpaceOutcome::Limit);
                }
                let members: i64 = tx.query_row(
                    "SELECT count(*) FROM members WHERE space_id = ?1",
                    [&space_id],
                    |r| r.get(0),
                )?;
                if members >= limits.members_per_space {
                    return Ok(SpaceOutcome::Limit);
                }
                tx.execute(
                    "INSERT INTO members (space_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
                    params![space_id, user_id, role.as_str(), now_ms],
                )?;
            }
            tx.execute("DELETE FROM invitations WHERE id = ?1", [&invitation_id])?;
            // Every member's account shows the member count, the newcomer's the space.
            let notify = member_ids(&tx, &space_id)?;
            bump_epochs(&tx, &notify)?;
            let space = space_of_member(&tx, &space_id, &user_id)?
                .ok_or_else(|| StorageError::Other("joined space vanished".into()))?;
            tx.commit()?;
            Ok(SpaceOutcome::Done((space, notify)))
        })
        .await
    }

    pub async fn decline_invitation(
        &self,
        user_id: &str,
        invitation_id: &str,
        now_ms: i64,
    ) -> Result<Changed<()>, StorageError> {
        let (user_id, invitation_id) = (user_id.to_string(), invitation_id.to_string());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if own_invitation(&tx, &user_id, &invitation_id, now_ms)?.is_none() {
                return Ok(SpaceOutcome::NotFound);
            }
            tx.execute("DELETE FROM invitations WHERE id = ?1", [&invitation_id])?;
            let notify = vec![user_id.clone()];
            bump_epochs(&tx, &notify)?;
            tx.commit()?;
            Ok(SpaceOutcome::Done(((), notify)))
        })
        .await
    }
}

/// The caller's membership, checked: `Ok(Ok(role))` when they are a member of a live space (and
/// an owner, when `manage`), else the refusal to answer (not a member: `NotFound`, checked
/// before anything else; a member without the right: `Forbidden`).
pub(super) fn require<T>(
    tx: &Connection,
    space_id: &str,
    user_id: &str,
    manage: bool,
) -> Result<Result<Role, SpaceOutcome<T>>, StorageError> {
    match role_of(tx, space_id, user_id)? {
        None => Ok(Err(SpaceOutcome::NotFound)),
        Some(role) if manage && !role.can_manage() => Ok(Err(SpaceOutcome::Forbidden)),
        Some(role) => Ok(Ok(role)),
    }
}

/// The role of `user_id` in the live space `space_id`, if a member.
fn role_of(conn: &Connection, space_id: &str, user_id: &str) -> Result<Option<Role>, StorageError> {
    let role: Option<String> = conn
        .prepare_cached(
            "SELECT m.role FROM members m JOIN streams s ON s.id = 'space:' || m.space_id
             WHERE m.space_id = ?1 AND m.user_id = ?2 AND s.deleted_at IS NULL",
        )?
        .query_row(params![space_id, user_id], |r| r.get(0))
        .optional()?;
    role.map(|r| stored_role(&r)).transpose()
}

fn space_of_member(
    conn: &Connection,
    space_id: &str,
    user_id: &str,
) -> Result<Option<SpaceRow>, StorageError> {
    let row = conn
        .prepare_cached(SPACE_OF_MEMBER)?
        .query_row(params![space_id, user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    row.map(|(id, name, role, created_at_ms, member_count)| {
        Ok(SpaceRow {
            id,
            name,
            role: stored_role(&role)?,
            member_count,
            created_at_ms,
        })
    })
    .transpose()
}

fn membership_count(conn: &Connection, user_id: &str) -> Result<i64, StorageError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM members WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

fn owner_count(conn: &Connection, space_id: &str) -> Result<i64, StorageError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM members WHERE space_id = ?1 AND role = 'owner'",
        [space_id],
        |r| r.get(0),
    )?)
}

fn member_ids(conn: &Connection, space_id: &str) -> Result<Vec<String>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT user_id FROM members WHERE space_id = ?1 ORDER BY user_id")?
        .query_map([space_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The accounts invited by the invitations matching `condition`.
fn invitee_ids(
    conn: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<String>, StorageError> {
    Ok(conn
        .prepare(&format!(
            "SELECT u.id FROM invitations i JOIN users u ON u.email = i.email WHERE {condition}"
        ))?
        .query_map(values, |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

fn invitations_where(
    conn: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<InvitationRow>, StorageError> {
    conn.prepare(&format!("{SELECT_INVITATIONS} WHERE {condition}"))?
        .query_map(values, super::sqlite::invitation_row)?
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The space and role of invitation `invitation_id` when it is addressed to the caller's account
/// email (the account row, not a token claim), unexpired, and its space is live.
fn own_invitation(
    tx: &Transaction<'_>,
    user_id: &str,
    invitation_id: &str,
    now_ms: i64,
) -> Result<Option<(String, Role)>, StorageError> {
    let found: Option<(String, String)> = tx
        .query_row(
            "SELECT i.space_id, i.role FROM invitations i
             JOIN users u ON u.email = i.email
             JOIN streams s ON s.id = 'space:' || i.space_id
             WHERE i.id = ?1 AND u.id = ?2 AND i.expires_at > ?3 AND s.deleted_at IS NULL",
            params![invitation_id, user_id, now_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    found
        .map(|(space, role)| Ok((space, stored_role(&role)?)))
        .transpose()
}

/// Raises the `account_seq` of each of `user_ids` (sorted, as the lock order asks).
pub(super) fn bump_epochs(conn: &Connection, user_ids: &[String]) -> Result<(), StorageError> {
    let mut sorted: Vec<&String> = user_ids.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut bump = conn.prepare_cached(
        "INSERT INTO user_epochs (user_id, account_seq) VALUES (?1, 1)
         ON CONFLICT (user_id) DO UPDATE SET account_seq = account_seq + 1",
    )?;
    for user_id in sorted {
        bump.execute([user_id])?;
    }
    Ok(())
}

impl SqliteStore {
    /// See `Storage::admin_write`: one transaction (the writer is the `public` stream's lock).
    pub async fn admin_write(
        &self,
        schema: &tandem_protocol::Schema,
        writes: Vec<AdminWrite>,
        now_ms: i64,
    ) -> Result<AdminOutcome, StorageError> {
        let schema = Arc::new(schema.clone());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (seq, purged): (i64, i64) = tx.query_row(
                "SELECT change_seq, purged_seq FROM streams WHERE id = 'public'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut streams = admin::streams(seq, purged);
            let probe = PushJob {
                user_id: ADMIN_OP_USER.to_string(),
                mutations: admin::probe(&writes),
                schema: schema.clone(),
                now_ms,
                client_id: ADMIN_OP_USER.to_string(),
            };
            let loaded = load_push_state(&tx, &probe, &streams)?;
            let hashes = crate::push::new_attachment_hashes(
                &schema,
                ADMIN_OP_USER,
                &probe.mutations,
                &loaded.records,
                |stream| stream == crate::push::PUBLIC_STREAM,
            );
            streams.readable_blobs = super::record_blobs_sqlite::complete_blobs(&tx, &hashes)?;
            let (plan, results) =
                match admin::plan(&schema, &writes, loaded.records, &streams, now_ms) {
                    Ok(planned) => planned,
                    Err(why) => return Ok(Err(why)),
                };
            let new_seq = admin::new_seq(&plan);
            if new_seq.is_some() {
                write_plan(
                    &tx,
                    &schema,
                    ADMIN_OP_USER,
                    &plan,
                    &loaded.stored_seqs,
                    now_ms,
                )?;
                tx.commit()?;
            }
            Ok(Ok((results, new_seq)))
        })
        .await
    }

    /// The ids of the live public records of `collection`.
    pub async fn public_ids(&self, collection: &str) -> Result<Vec<String>, StorageError> {
        let collection = collection.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare(
                    "SELECT entity_id FROM records
                     WHERE user_id = 'public' AND entity = ?1 AND deleted = 0 ORDER BY entity_id",
                )?
                .query_map([&collection], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
    }
}
