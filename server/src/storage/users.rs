//! Users and their data, for the operator (docs/design/operations.md §1–2, slice U): activity
//! times (`users.last_push_at`, `users.last_pull_at`), the `rejections` table, the users list and
//! one user's detail, deleting a user with everything of theirs. The SQL of each backend is in
//! `admin_sqlite.rs` / `admin_postgres.rs`; this file holds the shapes and the dispatch.

use tandem_protocol::{Mutation, MutationResult, ResultStatus, Schema, Scope};

use super::{Role, Storage, StorageError, UploadRow};

/// The newest rejections kept; the purge trims the rest.
pub const MAX_REJECTIONS: i64 = 10_000;

/// `users.last_pull_at` is written at most once per this span per user.
pub const PULL_NOTE_EVERY_MS: i64 = 60_000;

/// Which users' pulls this instance recorded within the last [`PULL_NOTE_EVERY_MS`], so that a
/// pull costs no database write (on SQLite, no wait for the writer) in between. The database's
/// own guard keeps it to one write a minute per user across instances.
#[derive(Debug, Default)]
pub struct PullNotes {
    noted: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// Users [`PullNotes`] remembers at most; past that it forgets the stale ones, or everyone.
const PULL_NOTES_CAP: usize = 10_000;

impl PullNotes {
    /// Whether the pull of `user_id` at `now_ms` is to be recorded (and it is taken as recorded).
    pub fn due(&self, user_id: &str, now_ms: i64) -> bool {
        let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&at) = noted.get(user_id) {
            if now_ms - at < PULL_NOTE_EVERY_MS && now_ms >= at {
                return false;
            }
        }
        if noted.len() >= PULL_NOTES_CAP {
            noted.retain(|_, at| now_ms - *at < PULL_NOTE_EVERY_MS);
            if noted.len() >= PULL_NOTES_CAP {
                noted.clear();
            }
        }
        noted.insert(user_id.to_string(), now_ms);
        true
    }
}

/// A user as the operator's list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummaryRow {
    pub id: String,
    pub email: String,
    pub created_at_ms: i64,
    pub last_push_at_ms: Option<i64>,
    pub last_pull_at_ms: Option<i64>,
    /// Live records of the user's own stream.
    pub records: i64,
}

/// One sign-in that has not been revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub created_at_ms: i64,
    /// When its refresh token was last exchanged (its creation when never).
    pub last_used_at_ms: i64,
}

/// A live space the user is a member of, with their role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpaceRow {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Everything the operator's page of one user shows, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub user: UserSummaryRow,
    /// Live records of the user's own stream per collection, by name.
    pub collections: Vec<(String, i64)>,
    pub spaces: Vec<UserSpaceRow>,
    pub sessions: Vec<SessionRow>,
}

/// A rejected change as the push recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRejection {
    /// `user`, `public` or `space:<id>` (the wire name).
    pub stream: String,
    pub collection: String,
    pub entity_id: String,
    pub op_id: String,
    /// The rejection code (`validation_failed`, `forbidden`, …).
    pub reason: String,
}

/// A stored rejection, with the user's email when the account still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionRow {
    pub at_ms: i64,
    pub user_id: String,
    pub email: Option<String>,
    pub rejection: NewRejection,
}

/// What deleting a user did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedUser {
    /// Live records of their own stream, deleted.
    pub records: u64,
    /// Spaces they were the only owner of that passed to another member: (space id, new owner).
    pub spaces_transferred: Vec<(String, String)>,
    /// Spaces they were the only member of, deleted.
    pub spaces_deleted: Vec<String>,
    /// Users whose account section changed (members of spaces the user left): to poke.
    pub concerned: Vec<String>,
    /// Their uploads in progress, whose rows are gone: the caller aborts their parts.
    pub uploads: Vec<UploadRow>,
}

/// What a push needs to label its rejected results: for each mutation in push order, its
/// collection, id and stream (wire name). Taken before the judge consumes the mutations.
pub struct RejectionLabels(Vec<(String, String, String)>);

impl RejectionLabels {
    pub fn of(schema: &Schema, mutations: &[Mutation]) -> Self {
        Self(
            mutations
                .iter()
                .map(|m| {
                    let stream = match (&m.space, schema.scope_of(&m.entity)) {
                        (Some(space), _) => tandem_protocol::space_stream(space),
                        (None, Some(Scope::Public)) => "public".to_string(),
                        _ => "user".to_string(),
                    };
                    (m.entity.clone(), m.entity_id.clone(), stream)
                })
                .collect(),
        )
    }

    /// The rejected results (status `rejected`; their reason is the rejection code), labelled.
    /// Results are one per mutation, in push order.
    pub fn rejections(self, results: &[MutationResult]) -> Vec<NewRejection> {
        results
            .iter()
            .zip(self.0)
            .filter(|(r, _)| r.status == ResultStatus::Rejected)
            .map(|(r, (collection, entity_id, stream))| NewRejection {
                stream,
                collection,
                entity_id,
                op_id: r.op_id.clone(),
                reason: r.reason.clone().unwrap_or_default(),
            })
            .collect()
    }
}

/// Users and their data.
impl Storage {
    /// Up to `limit` users by email after `after` (an email), whose email contains `query`
    /// (already lower-cased, as emails are stored) or whose id is `query`; plus whether more
    /// follow.
    pub async fn list_users(
        &self,
        query: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<UserSummaryRow>, bool), StorageError> {
        let (query, after) = (query.map(str::to_string), after.map(str::to_string));
        let mut rows = match self {
            Self::Sqlite(s) => s.list_users(query, after, limit + 1).await?,
            Self::Postgres(s) => s.list_users(query, after, limit + 1).await?,
        };
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// The operator's page of one user; `None` when there is no such user.
    pub async fn user_detail(&self, user_id: &str) -> Result<Option<UserDetail>, StorageError> {
        match self {
            Self::Sqlite(s) => s.user_detail(user_id).await,
            Self::Postgres(s) => s.user_detail(user_id).await,
        }
    }

    /// Records a pull of `user_id` at `now_ms` in `users.last_pull_at`, unless one was recorded
    /// less than [`PULL_NOTE_EVERY_MS`] before (so at most one write a minute per user).
    pub async fn note_pull(&self, user_id: &str, now_ms: i64) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.note_pull(user_id, now_ms).await,
            Self::Postgres(s) => s.note_pull(user_id, now_ms).await,
        }
    }

    /// The newest `limit` rejections (of `user_id` when given), newest first.
    pub async fn rejections(
        &self,
        user_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RejectionRow>, StorageError> {
        let user_id = user_id.map(str::to_string);
        match self {
            Self::Sqlite(s) => s.rejections(user_id, limit).await,
            Self::Postgres(s) => s.rejections(user_id, limit).await,
        }
    }

    /// Keeps the newest `keep` rejections (the purge: [`MAX_REJECTIONS`]); returns how many went.
    pub async fn trim_rejections(&self, keep: i64) -> Result<u64, StorageError> {
        match self {
            Self::Sqlite(s) => s.trim_rejections(keep).await,
            Self::Postgres(s) => s.trim_rejections(keep).await,
        }
    }

    /// Deletes the user and everything of theirs (docs/design/operations.md §1): first, in one
    /// transaction, their account row, sessions, refresh tokens, blob holders, uploads, epochs,
    /// invitations to their email, rejections, pauses and memberships (a space they were the only
    /// owner of passes to the remaining member who joined first; a space with no other member
    /// is deleted), and their stream is marked deleted as a deleted space's is; then, in batches,
    /// their records and index rows (the deleted-space purge, which also finishes the work
    /// after a crash) and their op ids. `None` when there is no such user.
    pub async fn delete_user(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<DeletedUser>, StorageError> {
        let deleted = match self {
            Self::Sqlite(s) => s.delete_user_rows(user_id, now_ms).await?,
            Self::Postgres(s) => s.delete_user_rows(user_id, now_ms).await?,
        };
        let Some(deleted) = deleted else {
            return Ok(None);
        };
        // The account is gone from here on: a failure below is logged, and the periodic purge
        // finishes the records (their stream is marked deleted), the op ids age out.
        let rows = self.purge_deleted_spaces().await.unwrap_or_else(|e| {
            tracing::warn!(user_id, error = %e, "deleting a deleted user's records failed; the purge will finish");
            0
        });
        let ops = match self {
            Self::Sqlite(s) => s.delete_user_ops(user_id).await,
            Self::Postgres(s) => s.delete_user_ops(user_id).await,
        }
        .unwrap_or_else(|e| {
            tracing::warn!(user_id, error = %e, "deleting a deleted user's op ids failed; they age out");
            0
        });
        tracing::info!(
            user_id,
            records = deleted.records,
            rows,
            ops,
            spaces_transferred = deleted.spaces_transferred.len(),
            spaces_deleted = deleted.spaces_deleted.len(),
            "deleted a user's data"
        );
        Ok(Some(deleted))
    }
}
