//! Spaces on this device (docs/design/spaces.md §9): the user's spaces and pending invitations as
//! the last pull or space call saw them (`spaces`, `invitations`), and the removal of a space the
//! user can no longer read (`drop_space`), which never loses an unsent change: records holding
//! one stay visible as `rejected` (`forbidden`) dead letters until the user discards them.
//!
//! The space calls themselves (create, invite, accept, ...) are online, like sign-in: they go to
//! the server through `api.rs` and apply their answer here at once (`Client`'s space calls).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Transaction};
use tandem_protocol::Schema;

use super::conflict;
use super::pull::{space_stream, stream_cursors};
use crate::error::{Error, Result};
use crate::outbox;
use crate::records::{self, RecordRow, RecordState};
use crate::store::{meta_get, meta_set};

/// The reason code a change of a space the user can no longer write carries (as the server's
/// `forbidden` rejection).
pub const FORBIDDEN: &str = "forbidden";
/// The `meta` key of the account section's sequence the last pull applied.
const ACCOUNT_SEQ_KEY: &str = "account_seq";

/// A member's role in a space (the protocol's `Role`): owner, editor or viewer.
pub use tandem_protocol::Role as SpaceRole;

/// A space the user is a member of, with the user's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub id: String,
    pub name: String,
    pub role: SpaceRole,
    pub member_count: i64,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// A member of a space (from `members`, online).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: SpaceRole,
    /// Unix milliseconds.
    pub joined_at_ms: i64,
}

/// An invitation to a space waiting for the user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub space_id: String,
    pub space_name: String,
    pub role: SpaceRole,
    /// The inviter's email.
    pub invited_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// An invitation the user sent (the answer to `invite`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentInvitation {
    pub id: String,
    pub email: String,
    pub role: SpaceRole,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

fn parse_role(s: &str, column: usize) -> rusqlite::Result<SpaceRole> {
    SpaceRole::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            Box::new(Error::Corrupt(format!("unknown space role {s:?}"))),
        )
    })
}

/// The user's spaces, by name then id.
pub fn spaces(conn: &Connection) -> Result<Vec<Space>> {
    let rows = conn
        .prepare_cached(
            "SELECT id, name, role, member_count, created_at FROM spaces ORDER BY name, id",
        )?
        .query_map([], |r| {
            Ok(Space {
                id: r.get(0)?,
                name: r.get(1)?,
                role: parse_role(&r.get::<_, String>(2)?, 2)?,
                member_count: r.get(3)?,
                created_at_ms: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The invitations waiting for the user, oldest first.
pub fn invitations(conn: &Connection) -> Result<Vec<Invitation>> {
    let rows = conn
        .prepare_cached(
            "SELECT id, space_id, space_name, role, invited_by, created_at, expires_at
             FROM invitations ORDER BY created_at, id",
        )?
        .query_map([], |r| {
            Ok(Invitation {
                id: r.get(0)?,
                space_id: r.get(1)?,
                space_name: r.get(2)?,
                role: parse_role(&r.get::<_, String>(3)?, 3)?,
                invited_by: r.get(4)?,
                created_at_ms: r.get(5)?,
                expires_at_ms: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The user's role in `space_id`; `None` when it is not among the user's spaces here.
pub fn role(conn: &Connection, space_id: &str) -> Result<Option<SpaceRole>> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM spaces WHERE id = ?1")?
        .query_row([space_id], |r| r.get(0))
        .optional()?;
    Ok(role.as_deref().and_then(SpaceRole::parse))
}

/// Inserts or updates one space (a created, accepted or renamed one); returns whether the row
/// changed.
pub fn save_space(tx: &Connection, space: &Space) -> Result<bool> {
    let n = tx
        .prepare_cached(
            "INSERT INTO spaces (id, name, role, member_count, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
               member_count = excluded.member_count, created_at = excluded.created_at
             WHERE (name, role, member_count, created_at)
                IS NOT (excluded.name, excluded.role, excluded.member_count, excluded.created_at)",
        )?
        .execute(rusqlite::params![
            space.id,
            space.name,
            space.role.as_str(),
            space.member_count,
            space.created_at_ms
        ])?;
    Ok(n > 0)
}

/// Forgets one invitation (accepted or declined here); returns whether there was one.
pub fn remove_invitation(tx: &Connection, invitation_id: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached("DELETE FROM invitations WHERE id = ?1")?
        .execute([invitation_id])?
        > 0)
}

/// The account section's sequence the last pull applied; `None` before the first.
pub fn account_seq(conn: &Connection) -> Result<Option<i64>> {
    Ok(meta_get(conn, ACCOUNT_SEQ_KEY)?.and_then(|s| s.parse().ok()))
}

/// What applying an account section changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub spaces_changed: bool,
    pub invitations_changed: bool,
    /// Spaces this device held (a row in `spaces` or a stream cursor) that the account no longer
    /// lists: the caller drops them ([`drop_space`]).
    pub removed: Vec<String>,
}

/// Replaces the user's spaces and invitations with an account section's (`account_seq`), and
/// says which spaces went.
pub fn replace_account(
    tx: &Transaction<'_>,
    account_seq: i64,
    new_spaces: &[Space],
    new_invitations: &[Invitation],
) -> Result<AccountChange> {
    let mut change = AccountChange::default();
    let before = spaces(tx)?;
    let listed: BTreeSet<&str> = new_spaces.iter().map(|s| s.id.as_str()).collect();
    let mut held: BTreeSet<String> = before.iter().map(|s| s.id.clone()).collect();
    for cursor in stream_cursors(tx)? {
        if let Some(id) = tandem_protocol::space_of_stream(&cursor.stream) {
            held.insert(id.to_string());
        }
    }
    change.removed = held
        .into_iter()
        .filter(|id| !listed.contains(id.as_str()))
        .collect();
    for space in new_spaces {
        change.spaces_changed |= save_space(tx, space)?;
    }
    if before.iter().any(|s| !listed.contains(s.id.as_str())) {
        change.spaces_changed = true;
    }
    // The removed spaces' rows go with `drop_space`; none other is left unlisted.
    let current = invitations(tx)?;
    let mut sorted = new_invitations.to_vec();
    sorted.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    if current != sorted {
        change.invitations_changed = true;
        tx.prepare_cached("DELETE FROM invitations")?.execute([])?;
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO invitations
               (id, space_id, space_name, role, invited_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for i in &sorted {
            insert.execute(rusqlite::params![
                i.id,
                i.space_id,
                i.space_name,
                i.role.as_str(),
                i.invited_by,
                i.created_at_ms,
                i.expires_at_ms
            ])?;
        }
    }
    meta_set(tx, ACCOUNT_SEQ_KEY, &account_seq.to_string())?;
    Ok(change)
}

/// What [`drop_space`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Collections whose records changed (observers to tell).
    pub changed: BTreeSet<String>,
    /// Records removed.
    pub removed: u64,
    /// Records kept as dead letters (they held unsent changes or an open conflict).
    pub kept: u64,
    /// Whether the space was among the user's spaces (`$spaces` observers to tell).
    pub had_space: bool,
}

/// Removes space `space_id` from this device in the caller's transaction: the user left it, was
/// removed, or it was deleted. Its records without local changes go; a record with unsent changes
/// or an open conflict stays, shown as `rejected`, each of its changes a dead letter with reason
/// `forbidden` (an open conflict's local side becomes one), so nothing the user wrote is lost
/// silently. Such a record keeps no server state (there is none it may see any more): discarding
/// or reverting its dead letter removes it. The space's stream cursor and row go too.
pub fn drop_space(
    tx: &Transaction<'_>,
    schema: &Schema,
    space_id: &str,
    now: i64,
) -> Result<Dropped> {
    let mut dropped = Dropped::default();
    let rows: Vec<RecordRow> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {} FROM records WHERE space_id = ?1 ORDER BY collection, id",
            records::COLUMNS
        ))?;
        let rows = stmt
            .query_map([space_id], records::from_row)?
            .collect::<Result<_, _>>()?;
        rows
    };
    for row in rows {
        let (collection, id) = (row.collection.as_str(), row.id.as_str());
        let open = conflict::get(tx, collection, id)?;
        let has_entries = outbox::has_entries(tx, collection, id)?;
        if open.is_none() && !has_entries {
            records::remove(tx, collection, id)?;
            if schema.collection(collection).is_some() {
                dropped.changed.insert(collection.to_string());
            }
            dropped.removed += 1;
            continue;
        }
        if let Some(open) = open {
            // The conflict's local side becomes the dead letter (its entry was parked with it).
            conflict::remove(tx, collection, id)?;
            outbox::release_hold(tx, collection, id)?;
            if outbox::unsent_for_record(tx, collection, id)?.is_empty() {
                outbox::record_rejected(tx, &row, open.local_doc.as_deref(), FORBIDDEN, now)?;
            }
        }
        tx.prepare_cached(
            "UPDATE outbox SET state = 'rejected', last_error = ?3, updated_at = ?4
             WHERE collection = ?1 AND entity_id = ?2 AND state IN ('pending', 'inflight')",
        )?
        .execute(rusqlite::params![collection, id, FORBIDDEN, now])?;
        // No server state to go back to: a discard or revert removes the record.
        let kept = RecordRow {
            state: RecordState::Rejected,
            server_doc: None,
            server_version: 0,
            updated_at: now,
            ..row
        };
        records::save(tx, &kept)?;
        dropped.changed.insert(kept.collection.clone());
        dropped.kept += 1;
    }
    tx.prepare_cached("DELETE FROM stream_cursors WHERE stream = ?1")?
        .execute([space_stream(space_id)])?;
    dropped.had_space = tx
        .prepare_cached("DELETE FROM spaces WHERE id = ?1")?
        .execute([space_id])?
        > 0;
    tx.prepare_cached("DELETE FROM invitations WHERE space_id = ?1")?
        .execute([space_id])?;
    tracing::info!(
        space_id,
        removed = dropped.removed,
        kept = dropped.kept,
        "space dropped from this device"
    );
    Ok(dropped)
}

// ---- From the wire ----

/// Unix milliseconds of an RFC 3339 time the server sent.
fn ms_of(text: &str, what: &str) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| Error::Protocol(format!("{what} is not an RFC 3339 time")))
}

impl Space {
    pub(crate) fn from_wire(out: tandem_protocol::SpaceOut) -> Result<Self> {
        Ok(Self {
            created_at_ms: ms_of(&out.created_at, "a space's createdAt")?,
            id: out.id,
            name: out.name,
            role: out.role,
            member_count: out.member_count,
        })
    }
}

impl Member {
    pub(crate) fn from_wire(out: tandem_protocol::MemberOut) -> Result<Self> {
        Ok(Self {
            joined_at_ms: ms_of(&out.joined_at, "a member's joinedAt")?,
            user_id: out.user_id,
            email: out.email,
            role: out.role,
        })
    }
}

impl Invitation {
    pub(crate) fn from_wire(out: tandem_protocol::InvitationOut) -> Result<Self> {
        Ok(Self {
            created_at_ms: ms_of(&out.created_at, "an invitation's createdAt")?,
            expires_at_ms: ms_of(&out.expires_at, "an invitation's expiresAt")?,
            id: out.id,
            space_id: out.space_id,
            space_name: out.space_name,
            role: out.role,
            invited_by: out.invited_by,
        })
    }
}

impl SentInvitation {
    pub(crate) fn from_wire(out: tandem_protocol::SentInvitationOut) -> Result<Self> {
        Ok(Self {
            created_at_ms: ms_of(&out.created_at, "an invitation's createdAt")?,
            expires_at_ms: ms_of(&out.expires_at, "an invitation's expiresAt")?,
            id: out.id,
            email: out.email,
            role: out.role,
        })
    }
}

impl super::pull::AccountSection {
    pub(crate) fn from_wire(out: tandem_protocol::AccountOut) -> Result<Self> {
        Ok(Self {
            account_seq: out.account_seq,
            spaces: out
                .spaces
                .into_iter()
                .map(Space::from_wire)
                .collect::<Result<_>>()?,
            invitations: out
                .invitations
                .into_iter()
                .map(Invitation::from_wire)
                .collect::<Result<_>>()?,
        })
    }
}
