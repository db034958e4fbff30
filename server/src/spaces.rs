//! What the membership primitives of both backends share: the limits, the ids they generate, the
//! invitation lifetime and the space-name rule. The primitives themselves are further `impl`
//! blocks of the backends (`storage/spaces_sqlite.rs`, `storage/spaces_postgres.rs`); each locks
//! as docs/design/spaces.md §4 says and reads the caller's membership in the same transaction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::storage::{
    AdminResult, AdminWrite, InvitationRow, MemberRow, Role, SpaceOutcome, SpaceRow, Storage,
    StorageError,
};

/// How long an invitation stays valid: 14 days from its (last) sending.
pub const INVITATION_TTL_MS: i64 = 14 * 24 * 3600 * 1000;

/// Longest space name, in code points.
pub const MAX_SPACE_NAME_CHARS: usize = 200;

/// The op user of admin writes and imports (`ops.user_id`; never a user id, which is a UUID).
pub const ADMIN_OP_USER: &str = "admin";

/// The limits of docs/design/spaces.md §5 (`--max-spaces-per-user`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceLimits {
    /// Memberships per user (create and accept check it).
    pub spaces_per_user: i64,
    /// Members per space (accept checks it).
    pub members_per_space: i64,
    /// Pending invitations per space (invite checks it).
    pub invitations_per_space: i64,
}

impl Default for SpaceLimits {
    fn default() -> Self {
        Self {
            spaces_per_user: 1000,
            members_per_space: 10_000,
            invitations_per_space: 1000,
        }
    }
}

/// A new space id: a UUID v7 (time-ordered, so spaces list in creation order by id).
pub fn new_space_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A new invitation id: 128 random bits, URL-safe base64 (22 characters, within the id rule).
pub fn new_invitation_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub use tandem_protocol::space_stream;

/// A space name as stored (trimmed), or why it is refused: 1..200 code points after trimming,
/// no control characters.
pub fn check_space_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err("name must not be empty".into());
    }
    if chars > MAX_SPACE_NAME_CHARS {
        return Err(format!(
            "name must have at most {MAX_SPACE_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(name.to_string())
}

/// What an admin batch came to: each write's result and the `public` stream's new sequence
/// (`None`: nothing changed), or why the whole batch is refused (`writes[i]: …`).
pub type AdminOutcome = Result<(Vec<AdminResult>, Option<i64>), String>;

/// `SpaceOutcome::Done` of a call that changed accounts, with the users concerned: their
/// `user_epochs` rose in the same transaction, and they are to be poked `{"account": true}`.
pub type Changed<T> = SpaceOutcome<(T, Vec<String>)>;

/// The membership primitives of both backends (docs/design/spaces.md §4). Each locks as the lock
/// order says and reads the caller's membership in the transaction that acts; "not a member" is
/// `NotFound`, checked before anything about the target member or invitation.
impl Storage {
    /// Creates a space owned by `user_id`; the same `request_id` again answers the same space
    /// (`false`: not created now).
    pub async fn create_space(
        &self,
        user_id: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<SpaceOutcome<(SpaceRow, bool)>, StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.create_space(user_id, name, request_id, now_ms, limits)
                    .await
            }
            Self::Postgres(s) => {
                s.create_space(user_id, name, request_id, now_ms, limits)
                    .await
            }
        }
    }

    /// Renames a space (owner); every member's account changes.
    pub async fn rename_space(
        &self,
        user_id: &str,
        space_id: &str,
        name: &str,
    ) -> Result<Changed<SpaceRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.rename_space(user_id, space_id, name).await,
            Self::Postgres(s) => s.rename_space(user_id, space_id, name).await,
        }
    }

    /// Deletes a space (owner): `streams.deleted_at` is set, members, invitations and the space
    /// row go; the records are purged later in the background.
    pub async fn delete_space(
        &self,
        user_id: &str,
        space_id: &str,
        now_ms: i64,
    ) -> Result<Changed<()>, StorageError> {
        match self {
            Self::Sqlite(s) => s.delete_space(user_id, space_id, now_ms).await,
            Self::Postgres(s) => s.delete_space(user_id, space_id, now_ms).await,
        }
    }

    /// The members of a space (any member may list them).
    pub async fn members(
        &self,
        user_id: &str,
        space_id: &str,
    ) -> Result<SpaceOutcome<Vec<MemberRow>>, StorageError> {
        match self {
            Self::Sqlite(s) => s.members(user_id, space_id).await,
            Self::Postgres(s) => s.members(user_id, space_id).await,
        }
    }

    /// Changes a member's role (owner); the last owner cannot be demoted.
    pub async fn set_role(
        &self,
        user_id: &str,
        space_id: &str,
        member_id: &str,
        role: Role,
    ) -> Result<Changed<MemberRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.set_role(user_id, space_id, member_id, role).await,
            Self::Postgres(s) => s.set_role(user_id, space_id, member_id, role).await,
        }
    }

    /// Removes a member (owner), or leaves (`member_id == user_id`, anyone but the last owner).
    pub async fn remove_member(
        &self,
        user_id: &str,
        space_id: &str,
        member_id: &str,
    ) -> Result<Changed<()>, StorageError> {
        match self {
            Self::Sqlite(s) => s.remove_member(user_id, space_id, member_id).await,
            Self::Postgres(s) => s.remove_member(user_id, space_id, member_id).await,
        }
    }

    /// Invites `email` (trimmed, lower-cased) with `role` (owner); again: role and expiry renewed.
    pub async fn invite(
        &self,
        user_id: &str,
        space_id: &str,
        email: &str,
        role: Role,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<Changed<InvitationRow>, StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.invite(user_id, space_id, email, role, now_ms, limits)
                    .await
            }
            Self::Postgres(s) => {
                s.invite(user_id, space_id, email, role, now_ms, limits)
                    .await
            }
        }
    }

    /// The space's pending invitations (owner).
    pub async fn space_invitations(
        &self,
        user_id: &str,
        space_id: &str,
        now_ms: i64,
    ) -> Result<SpaceOutcome<Vec<InvitationRow>>, StorageError> {
        match self {
            Self::Sqlite(s) => s.space_invitations(user_id, space_id, now_ms).await,
            Self::Postgres(s) => s.space_invitations(user_id, space_id, now_ms).await,
        }
    }

    /// Revokes a pending invitation (owner).
    pub async fn revoke_invitation(
        &self,
        user_id: &str,
        space_id: &str,
        invitation_id: &str,
    ) -> Result<Changed<()>, StorageError> {
        match self {
            Self::Sqlite(s) => s.revoke_invitation(user_id, space_id, invitation_id).await,
            Self::Postgres(s) => s.revoke_invitation(user_id, space_id, invitation_id).await,
        }
    }

    /// Accepts an invitation addressed to the caller's account email; a retry answers the space.
    pub async fn accept_invitation(
        &self,
        user_id: &str,
        invitation_id: &str,
        now_ms: i64,
        limits: SpaceLimits,
    ) -> Result<Changed<SpaceRow>, StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.accept_invitation(user_id, invitation_id, now_ms, limits)
                    .await
            }
            Self::Postgres(s) => {
                s.accept_invitation(user_id, invitation_id, now_ms, limits)
                    .await
            }
        }
    }

    /// Writes public records with the admin's authority (see [`admin`]), in one transaction
    /// under the `public` stream's lock.
    pub async fn admin_write(
        &self,
        schema: &tandem_protocol::Schema,
        writes: Vec<AdminWrite>,
        now_ms: i64,
    ) -> Result<AdminOutcome, StorageError> {
        match self {
            Self::Sqlite(s) => s.admin_write(schema, writes, now_ms).await,
            Self::Postgres(s) => s.admin_write(schema, writes, now_ms).await,
        }
    }

    /// The ids of the live public records of `collection` (for `import --prune`).
    pub async fn public_ids(&self, collection: &str) -> Result<Vec<String>, StorageError> {
        match self {
            Self::Sqlite(s) => s.public_ids(collection).await,
            Self::Postgres(s) => s.public_ids(collection).await,
        }
    }

    /// Declines an invitation addressed to the caller's account email.
    pub async fn decline_invitation(
        &self,
        user_id: &str,
        invitation_id: &str,
        now_ms: i64,
    ) -> Result<Changed<()>, StorageError> {
        match self {
            Self::Sqlite(s) => s.decline_invitation(user_id, invitation_id, now_ms).await,
            Self::Postgres(s) => s.decline_invitation(user_id, invitation_id, now_ms).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_space_name("  Family ").unwrap(), "Family");
        assert!(check_space_name("   ").is_err());
        assert!(check_space_name(&"é".repeat(200)).is_ok());
        assert!(check_space_name(&"é".repeat(201)).is_err());
        assert!(check_space_name("a\nb").is_err());
    }

    #[test]
    fn invitation_ids_follow_the_id_rule() {
        let id = new_invitation_id();
        assert_eq!(id.len(), 22);
        assert!(tandem_protocol::is_valid_id(&id));
        assert_ne!(id, new_invitation_id());
    }
}

/// Admin writes to public collections (`POST /admin/v1/public/write`, `tandem-server import`)
/// go through the push judge with the op user [`ADMIN_OP_USER`] and the `public` stream as the
/// one writable stream: the same validation, parents, references, unique keys, cascades, block
/// counts and notices as any push. They are authoritative: each write is based on the stored
/// version (no conflicts), a document equal to the stored one is a no-op, and a delete of what
/// is not there changes nothing.
pub(crate) mod admin {
    use std::collections::{HashMap, HashSet};

    use tandem_protocol::{Mutation, MutationType, ResultStatus, Schema};

    use super::ADMIN_OP_USER;
    use crate::push::{
        self, PushPlan, PushStreams, RecordKey, RecordWrite, StoredRecord, PUBLIC_STREAM,
    };
    use crate::storage::{AdminResult, AdminWrite, Role};

    /// The streams an admin batch writes: `public` only, at its locked sequence.
    pub fn streams(change_seq: i64, purged_seq: i64) -> PushStreams {
        PushStreams {
            user: ADMIN_OP_USER.to_string(),
            seqs: HashMap::from([
                (ADMIN_OP_USER.to_string(), (0, 0)),
                (PUBLIC_STREAM.to_string(), (change_seq, purged_seq)),
            ]),
            roles: HashMap::from([(PUBLIC_STREAM.to_string(), Role::Owner)]),
            // Filled by the storage: every complete blob the writes name (the admin may name
            // any blob the server holds; only references make it readable).
            readable_blobs: HashSet::new(),
        }
    }

    fn mutation(write: &AdminWrite, base_version: Option<i64>) -> Mutation {
        Mutation {
            op_id: uuid::Uuid::now_v7().to_string(),
            entity: write.collection.clone(),
            entity_id: write.id.clone(),
            kind: if write.doc.is_some() {
                MutationType::Upsert
            } else {
                MutationType::Delete
            },
            base_version,
            payload: write.doc.clone(),
            client_time: crate::clock::rfc3339_from_ms(0),
            group_id: None,
            edited_at: None,
            field_edited_at: None,
            space: None,
        }
    }

    /// The mutations whose loading brings in everything the writes touch (their records, the
    /// parents they name, descendants and referrers of what they delete).
    pub fn probe(writes: &[AdminWrite]) -> Vec<Mutation> {
        writes.iter().map(|w| mutation(w, None)).collect()
    }

    /// Judges `writes` against the `loaded` records: the plan to write and each write's result,
    /// or why the batch is refused (`writes[i]: …`). Writes apply in order: a batch naming one
    /// record twice is judged in rounds (each round names a record once), each round against
    /// what the rounds before it left, and the plan writes each record's final state.
    pub fn plan(
        schema: &Schema,
        writes: &[AdminWrite],
        mut loaded: HashMap<RecordKey, StoredRecord>,
        streams: &PushStreams,
        now_ms: i64,
    ) -> Result<(PushPlan, Vec<AdminResult>), String> {
        let mut streams = streams.clone();
        let mut results: Vec<Option<AdminResult>> = vec![None; writes.len()];
        let mut final_writes: HashMap<RecordKey, RecordWrite> = HashMap::new();
        let mut applied_ops = Vec::new();
        let mut public_seq = None;
        let mut remaining: Vec<usize> = (0..writes.len()).collect();
        while !remaining.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<usize>, Vec<usize>) = remaining.iter().partition(|&&i| {
                seen.insert(RecordKey::new(
                    PUBLIC_STREAM,
                    &writes[i].collection,
                    &writes[i].id,
                ))
            });
            remaining = later;
            let plan = judge_round(
                schema,
                writes,
                &round,
                &loaded,
                &streams,
                now_ms,
                &mut results,
            )?;
            if let Some(seq) = new_seq(&plan) {
                public_seq = Some(seq);
                if let Some(s) = streams.seqs.get_mut(PUBLIC_STREAM) {
                    s.0 = seq;
                }
            }
            for w in plan.writes {
                loaded.insert(w.record.key.clone(), w.record.clone());
                final_writes.insert(w.record.key.clone(), w);
            }
            applied_ops.extend(plan.applied_ops);
        }
        let mut writes_out: Vec<RecordWrite> = final_writes.into_values().collect();
        writes_out.sort_by_key(|w| w.seq);
        let plan = PushPlan {
            results: Vec::new(),
            writes: writes_out,
            applied_ops,
            last_seq: 0,
            stream_seqs: public_seq
                .map(|seq| vec![(PUBLIC_STREAM.to_string(), seq)])
                .unwrap_or_default(),
        };
        Ok((plan, results.into_iter().flatten().collect()))
    }

    /// Judges the writes `round` (each naming a different record) and fills in their results.
    fn judge_round(
        schema: &Schema,
        writes: &[AdminWrite],
        round: &[usize],
        loaded: &HashMap<RecordKey, StoredRecord>,
        streams: &PushStreams,
        now_ms: i64,
        results: &mut [Option<AdminResult>],
    ) -> Result<PushPlan, String> {
        let mut mutations = Vec::new();
        // Per write of the round: its index, its version before, and its mutation's index
        // (`None`: a delete of what is not there, which changes nothing).
        let mut judged: Vec<(usize, Option<i64>, Option<usize>)> = Vec::new();
        for &i in round {
            let w = &writes[i];
            let stored = loaded.get(&RecordKey::new(PUBLIC_STREAM, &w.collection, &w.id));
            let live = stored.filter(|r| !r.deleted).map(|r| r.version);
            if w.doc.is_none() && live.is_none() {
                results[i] = Some(AdminResult {
                    id: w.id.clone(),
                    version: stored.map_or(0, |r| r.version),
                    changed: false,
                });
                continue;
            }
            judged.push((i, live, Some(mutations.len())));
            mutations.push(mutation(w, stored.map(|r| r.version)));
        }
        let plan = push::plan_push(
            schema,
            mutations,
            HashMap::new(),
            loaded.clone(),
            streams,
            &push::EditStamp {
                now_ms,
                client_id: ADMIN_OP_USER.to_string(),
            },
        );
        for (i, before, m) in judged {
            let Some(m) = m.map(|m| &plan.results[m]) else {
                continue;
            };
            if m.status != ResultStatus::Applied {
                let status = serde_json::to_value(m.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let reason = m.reason.clone().unwrap_or_default();
                return Err(format!("writes[{i}]: {status} {reason}"));
            }
            let version = m.version.unwrap_or_default();
            results[i] = Some(AdminResult {
                id: writes[i].id.clone(),
                version,
                changed: before != Some(version) || writes[i].doc.is_none(),
            });
        }
        Ok(plan)
    }

    /// The new `public` sequence a plan leaves, if it wrote anything.
    pub fn new_seq(plan: &PushPlan) -> Option<i64> {
        plan.stream_seqs
            .iter()
            .find(|(stream, _)| stream == PUBLIC_STREAM)
            .map(|(_, seq)| *seq)
    }
}
