//! The users routes of the admin API (`/admin/v1/users…`, `/admin/v1/rejections`; see
//! docs/protocol.md "Admin API"): the shapes the server answers and the operator's tools read.
//! Times are RFC 3339 (UTC).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Role;

/// Most users one `GET /admin/v1/users` lists, and how many without `limit`.
pub const MAX_USERS_PAGE: u32 = 200;
pub const DEFAULT_USERS_PAGE: u32 = 50;
/// Most rejections one `GET /admin/v1/rejections` lists, and how many without `limit`.
pub const MAX_REJECTIONS_PAGE: u32 = 500;
pub const DEFAULT_REJECTIONS_PAGE: u32 = 100;

/// A user in the operator's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub created_at: String,
    /// The last push (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_at: Option<String>,
    /// The last pull, to the minute (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pull_at: Option<String>,
    /// Live records of the user's own stream.
    pub records: i64,
    /// Whether a pause of this user is in force (the global pause is not counted).
    pub paused: bool,
    /// Event streams of the user open on the instance that answered.
    pub live_streams: u64,
}

/// `GET /admin/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    pub users: Vec<UserSummary>,
    /// Present when more users follow: pass it as `after` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A space of a user, in `GET /admin/v1/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpace {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// A sign-in of a user that has not been revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSession {
    pub id: String,
    pub created_at: String,
    /// Its refresh token's last exchange (its creation when never exchanged).
    pub last_used_at: String,
}

/// `GET /admin/v1/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDetailOut {
    pub user: UserSummary,
    /// Live records of the user's own stream per collection (collections without any left out).
    pub collections: BTreeMap<String, i64>,
    pub spaces: Vec<UserSpace>,
    pub sessions: Vec<UserSession>,
    pub live_streams: u64,
}

/// A space that passed to another member when its only owner was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferredSpace {
    pub id: String,
    /// The user id of the member promoted to owner.
    pub new_owner: String,
}

/// `DELETE /admin/v1/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUserOut {
    /// Live records of the user's own stream, deleted.
    pub records: u64,
    pub spaces_transferred: Vec<TransferredSpace>,
    /// Spaces the user was the only member of, deleted.
    pub spaces_deleted: Vec<String>,
}

/// One rejected change, as the push that refused it recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionOut {
    pub at: String,
    pub user_id: String,
    /// The pusher's email (absent once the account is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `user`, `public` or `space:<id>`.
    pub stream: String,
    pub collection: String,
    /// The record's id.
    pub id: String,
    pub op_id: String,
    /// The rejection code (see "Rejection codes").
    pub reason: String,
}

/// `GET /admin/v1/rejections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionsOut {
    /// Newest first.
    pub rejections: Vec<RejectionOut>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_summary_leaves_out_the_times_it_does_not_have() {
        let summary = UserSummary {
            id: "u1".into(),
            email: "a@example.com".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            last_push_at: None,
            last_pull_at: Some("2026-01-02T00:00:00Z".into()),
            records: 3,
            paused: false,
            live_streams: 1,
        };
        let value = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            value,
            json!({"id": "u1", "email": "a@example.com", "createdAt": "2026-01-01T00:00:00Z",
                   "lastPullAt": "2026-01-02T00:00:00Z", "records": 3, "paused": false,
                   "liveStreams": 1})
        );
        assert_eq!(
            serde_json::from_value::<UserSummary>(value).unwrap(),
            summary
        );
    }

    #[test]
    fn deleted_user_and_rejections_are_camel_case() {
        let deleted = DeletedUserOut {
            records: 2,
            spaces_transferred: vec![TransferredSpace {
                id: "s1".into(),
                new_owner: "u2".into(),
            }],
            spaces_deleted: vec!["s3".into()],
        };
        assert_eq!(
            serde_json::to_value(&deleted).unwrap(),
            json!({"records": 2, "spacesTransferred": [{"id": "s1", "newOwner": "u2"}],
                   "spacesDeleted": ["s3"]})
        );
        let rejection: RejectionOut = serde_json::from_value(json!({
            "at": "2026-01-01T00:00:00Z", "userId": "u1", "stream": "user",
            "collection": "exercises", "id": "e1", "opId": "o1", "reason": "invalid_payload"}))
        .unwrap();
        assert_eq!(rejection.email, None);
        assert_eq!(rejection.op_id, "o1");
    }
}
