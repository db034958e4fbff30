//! The protocol's codes as types: the `error` of every error body ([`ErrorCode`]), the `reason`
//! of a `rejected` push result ([`RejectionCode`]) and of a `conflict` one ([`ConflictCode`]).
//!
//! On the wire each is the same lowercase string as always (`docs/protocol.md`). A code this
//! version does not know (a newer server, or a GoTrue-compatible auth server's own codes) reads
//! as `Other` with the text kept, so a client never fails on a code it has not heard of.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a string-coded enum with an `Other(String)` case: `as_str`, `From<&str>`,
/// `From<String>`, `Display`, and serde as the bare string.
macro_rules! string_codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this version does not know, as received.
            Other(String),
        }

        impl $name {
            /// Every code this version knows (not `Other`).
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The wire string of a known code; `None` for `Other`.
            pub fn known_str(&self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($text), )*
                    Self::Other(_) => None,
                }
            }

            /// The code as it goes on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match Self::from(text.as_str()) {
                    Self::Other(_) => Self::Other(text),
                    known => known,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

string_codes! {
    /// The `error` of an error body (`{"error": …, "error_description": …}`).
    pub enum ErrorCode {
        /// 400: malformed JSON or HTTP, wrong field types, bad ids, a foreign cursor …
        InvalidRequest => "invalid_request",
        /// 400: wrong email or password; unknown, revoked or reused refresh token.
        InvalidGrant => "invalid_grant",
        /// 400: `grant_type` missing or unknown.
        UnsupportedGrantType => "unsupported_grant_type",
        /// 400: more mutations in one push than the server takes.
        BatchTooLarge => "batch_too_large",
        /// 401: missing, malformed or wrongly signed access token, or a deleted account's.
        Unauthorized => "unauthorized",
        /// 401: a well-signed access token whose `exp` has passed.
        TokenExpired => "token_expired",
        /// 403: a space member whose role does not allow the management call.
        Forbidden => "forbidden",
        /// 403: an upload that would take the user's stored attachment bytes over their quota.
        QuotaExceeded => "quota_exceeded",
        /// 404: unknown route; an unknown space or invitation, or a space the caller is not a
        /// member of (the two answer alike, so a non-member learns nothing).
        NotFound => "not_found",
        /// 405: known route, wrong method.
        MethodNotAllowed => "method_not_allowed",
        /// 408: the body did not arrive in time.
        RequestTimeout => "request_timeout",
        /// 409: the call would leave a space without an owner.
        LastOwner => "last_owner",
        /// 409: inviting someone who is already a member of the space.
        AlreadyMember => "already_member",
        /// 409: a server limit on spaces per user, members per space or pending invitations.
        LimitReached => "limit_reached",
        /// 409: an upload chunk's `Upload-Offset` is not the server's offset, which the body's
        /// `offset` names; the client continues from there.
        OffsetMismatch => "offset_mismatch",
        /// 410: the pull cursor predates purged tombstones.
        CursorExpired => "cursor_expired",
        /// 413: body over the server's limit.
        PayloadTooLarge => "payload_too_large",
        /// 413: an attachment over the server's per-file limit (named in `error_description`).
        AttachmentTooLarge => "attachment_too_large",
        /// 415: a JSON route called with another content type.
        UnsupportedMediaType => "unsupported_media_type",
        /// 416: a download `Range` that starts at or past the blob's end.
        RangeNotSatisfiable => "range_not_satisfiable",
        /// 422: sign-up with an email that has an account.
        UserAlreadyExists => "user_already_exists",
        /// 422: password too short.
        WeakPassword => "weak_password",
        /// 422: email not of the form `local@domain`, or too long.
        ValidationFailed => "validation_failed",
        /// 422: an uploaded blob whose bytes do not hash to its name; the upload is discarded.
        HashMismatch => "hash_mismatch",
        /// 429: too many attempts; `Retry-After` set.
        RateLimited => "rate_limited",
        /// 431: request head over the server's limit.
        HeadersTooLarge => "headers_too_large",
        /// 500: the server failed.
        ServerError => "server_error",
        /// 503: sync paused by the operator.
        SyncPaused => "sync_paused",
        /// 503: too many connections or password hashes queued.
        ServerBusy => "server_busy",
    }
}

string_codes! {
    /// The `reason` of a `rejected` push result: the mutation can never apply as sent.
    pub enum RejectionCode {
        /// The collection is not in the server's schema.
        UnknownEntity => "unknown_entity",
        /// The document does not match its collection's schema.
        InvalidPayload => "invalid_payload",
        /// A child whose parent does not exist (or is deleted).
        InvalidParent => "invalid_parent",
        /// The document is over the size limit.
        TooLarge => "too_large",
        /// A `ref` field names a record that does not exist (or is deleted).
        InvalidReference => "invalid_reference",
        /// A delete refused because live records refer to it through a `restrict` reference.
        Restricted => "restricted",
        /// The pusher may not write the record's stream: a viewer, a non-member, a removed member,
        /// a deleted space, or a public collection (written only by the admin API).
        Forbidden => "forbidden",
        /// An attachment names a blob the server does not hold complete, or that the pusher may
        /// not read (they did not upload it and no record they can read references it).
        AttachmentMissing => "attachment_missing",
    }
}

string_codes! {
    /// The `reason` of a `conflict` push result: the record is not where the client thought.
    pub enum ConflictCode {
        /// `upsert` with `baseVersion: null` while a live record exists.
        AlreadyExists => "already_exists",
        /// `upsert` with `baseVersion: null` while a deleted record exists.
        Deleted => "deleted",
        /// `baseVersion` is not the record's version.
        VersionMismatch => "version_mismatch",
        /// `baseVersion: n` (or a delete) for a record that does not exist.
        NotFound => "not_found",
        /// The document's values of a unique constraint are held by another live record, named
        /// by the result's `existingId`.
        UniqueViolation => "unique_violation",
    }
}

string_codes! {
    /// The `reason` of an `aborted` push result: why a group member was not applied.
    pub enum AbortCode {
        /// Another member of its group (named by `failedOpId`) met a conflict or a rejection, so
        /// no member of the group was applied. Send the group again once that member is settled.
        GroupFailed => "group_failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_wire_strings_and_unknown_ones_survive() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::from(code.as_str()), *code);
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        assert_eq!(ErrorCode::TokenExpired.as_str(), "token_expired");
        assert_eq!(RejectionCode::InvalidParent.as_str(), "invalid_parent");
        assert_eq!(ConflictCode::VersionMismatch.as_str(), "version_mismatch");
        let newer: ErrorCode = serde_json::from_str("\"disk_on_fire\"").unwrap();
        assert_eq!(newer, ErrorCode::Other("disk_on_fire".into()));
        assert_eq!(serde_json::to_string(&newer).unwrap(), "\"disk_on_fire\"");
        assert_eq!(
            ConflictCode::from("nope"),
            ConflictCode::Other("nope".into())
        );
        assert!(RejectionCode::TooLarge == "too_large");
        assert_eq!(AbortCode::GroupFailed.as_str(), "group_failed");
        assert_eq!(AbortCode::from("group_failed"), AbortCode::GroupFailed);
    }

    #[test]
    fn attachment_codes() {
        for (code, text) in [
            (ErrorCode::AttachmentTooLarge, "attachment_too_large"),
            (ErrorCode::QuotaExceeded, "quota_exceeded"),
            (ErrorCode::OffsetMismatch, "offset_mismatch"),
            (ErrorCode::HashMismatch, "hash_mismatch"),
            (ErrorCode::RangeNotSatisfiable, "range_not_satisfiable"),
        ] {
            assert_eq!(code.as_str(), text);
            assert_eq!(ErrorCode::from(text), code);
            assert!(ErrorCode::KNOWN.contains(&code));
        }
        assert_eq!(
            RejectionCode::from("attachment_missing"),
            RejectionCode::AttachmentMissing
        );
        assert_eq!(
            RejectionCode::AttachmentMissing.known_str(),
            Some("attachment_missing")
        );
    }
}
