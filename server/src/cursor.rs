//! Pull cursors: a position in one user's change sequence, plus the user's purge state when the
//! cursor was issued, signed so that a cursor the server never issued (garbage, edited, or another
//! user's) is told apart from a real one. The format `c2.<seq>.<purged>.<mac>` is opaque to
//! clients; `c1.<seq>.<mac>` cursors, issued before the purge state was recorded, still decode
//! (with a recorded purge state of 0, which expires them exactly as before).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a cursor says: where its holder is, and how far tombstones had been purged then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The holder has every change up to this sequence number.
    pub seq: i64,
    /// The user's `purged_seq` in the snapshot the cursor was issued from.
    pub purged_seq: i64,
}

impl Cursor {
    /// Whether the holder may have missed a deletion whose tombstone is gone, given the user's
    /// `purged_seq` now. Only a purge after the cursor was issued can take a tombstone the holder
    /// had not pulled yet (anything purged before was already gone when the holder's chain of
    /// pulls read past it, so the holder never had that record), and only one that reached
    /// beyond the cursor's position. Without the first half, the second page of a full pull from
    /// `null` would expire whenever its first page ended below an earlier purge.
    pub fn expired(&self, purged_seq_now: i64) -> bool {
        purged_seq_now > self.purged_seq && self.seq < purged_seq_now
    }
}

/// Signs and checks cursors with a key derived from the server secret.
pub struct CursorCodec {
    key: Vec<u8>,
}

impl CursorCodec {
    /// A codec keyed by the server secret (the purpose is mixed in so a cursor MAC can never be
    /// mistaken for a token signature).
    pub fn new(secret: &[u8]) -> Self {
        let mut key = b"tandem-cursor-v1:".to_vec();
        key.extend_from_slice(secret);
        Self { key }
    }

    /// The cursor for `cursor` of `user_id`'s changes.
    pub fn encode(&self, user_id: &str, cursor: Cursor) -> String {
        let Cursor { seq, purged_seq } = cursor;
        format!(
            "c2.{seq}.{purged_seq}.{}",
            self.mac(&[user_id, &seq.to_string(), &purged_seq.to_string()], V2)
        )
    }

    /// What a cursor issued to `user_id` says, or `None` when it was not issued to them.
    pub fn decode(&self, user_id: &str, cursor: &str) -> Option<Cursor> {
        if let Some(rest) = cursor.strip_prefix("c2.") {
            return self.decode_v2(user_id, rest);
        }
        let (seq, mac) = cursor.strip_prefix("c1.")?.split_once('.')?;
        let seq = parse_number(seq)?;
        self.verify(&[user_id, &seq.to_string()], V1, mac)?;
        Some(Cursor { seq, purged_seq: 0 })
    }

    fn decode_v2(&self, user_id: &str, rest: &str) -> Option<Cursor> {
        let mut parts = rest.split('.');
        let (seq, purged, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (seq, purged_seq) = (parse_number(seq)?, parse_number(purged)?);
        self.verify(
            &[user_id, &seq.to_string(), &purged_seq.to_string()],
            V2,
            mac,
        )?;
        Some(Cursor { seq, purged_seq })
    }

    fn verify(&self, fields: &[&str], version: &[u8], mac: &str) -> Option<()> {
        let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.hmac(fields, version)
            .verify_truncated_left(&given)
            .ok()?;
        (given.len() == MAC_BYTES).then_some(())
    }

    fn mac(&self, fields: &[&str], version: &[u8]) -> String {
        let full = self.hmac(fields, version).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&full[..MAC_BYTES])
    }

    /// The MAC input is the fields joined by `:`; v2 also mixes in its version, so that no v2
    /// cursor's MAC can ever pass as a v1 one (or back) whatever the fields hold. v1 mixes in
    /// nothing: cursors already handed out must keep verifying.
    fn hmac(&self, fields: &[&str], version: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(version);
        mac.update(fields.join(":").as_bytes());
        mac
    }
}

const V1: &[u8] = b"";
const V2: &[u8] = b"c2:";

/// A non-negative number in its one canonical spelling (no sign, no leading zeros), so that one
/// cursor has exactly one text.
fn parse_number(text: &str) -> Option<i64> {
    let n: i64 = text.parse().ok()?;
    (n >= 0 && n.to_string() == text).then_some(n)
}

/// 128 bits of MAC: plenty against forgery, short in the JSON.
const MAC_BYTES: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    const AT_42: Cursor = Cursor {
        seq: 42,
        purged_seq: 7,
    };

    #[test]
    fn round_trips_and_refuses_foreign_cursors() {
        let codec = CursorCodec::new(b"secret");
        let c = codec.encode("u1", AT_42);
        assert_eq!(codec.decode("u1", &c), Some(AT_42));
        assert_eq!(codec.decode("u2", &c), None);
        assert_eq!(CursorCodec::new(b"other").decode("u1", &c), None);
        assert_eq!(codec.decode("u1", &c.replace("42", "43")), None);
        assert_eq!(codec.decode("u1", &c.replace(".7.", ".0.")), None);
        assert_eq!(codec.decode("u1", &c.replace(".7.", ".07.")), None);
        assert_eq!(codec.decode("u1", &format!("{c}.x")), None);
        assert_eq!(codec.decode("u1", "garbage"), None);
        assert_eq!(codec.decode("u1", "c2.42.7."), None);
        assert_eq!(codec.decode("u1", "c2.-1.0.AAAA"), None);
        assert_eq!(codec.decode("u1", &c[..c.len() - 2]), None);
    }

    /// A cursor as the server issued them before purge states were recorded (same key, MAC of
    /// `user:seq`, 16 bytes): it still decodes, with recorded purge state 0.
    #[test]
    fn decodes_v1_cursors() {
        let codec = CursorCodec::new(b"secret");
        let v1 = format!("c1.42.{}", codec.mac(&["u1", "42"], V1));
        assert_eq!(
            codec.decode("u1", &v1),
            Some(Cursor {
                seq: 42,
                purged_seq: 0
            })
        );
        assert_eq!(codec.decode("u2", &v1), None);
        assert_eq!(codec.decode("u1", &v1.replace("42", "43")), None);
        assert_eq!(codec.decode("u1", "c1.42."), None);
        assert_eq!(codec.decode("u1", "c1.-1.AAAA"), None);
        // A v2 MAC never passes as v1 (nor the reverse).
        let v2_mac = codec.mac(&["u1", "42"], V2);
        assert_eq!(codec.decode("u1", &format!("c1.42.{v2_mac}")), None);
    }

    #[test]
    fn expires_only_after_a_later_purge_past_its_position() {
        // Issued mid-way through a full pull, below the purge that had already happened.
        let mid_pull = Cursor {
            seq: 5,
            purged_seq: 10,
        };
        assert!(!mid_pull.expired(10));
        assert!(mid_pull.expired(11));
        // Issued past every purge: a later purge expires it only when it reaches past it.
        let caught_up = Cursor {
            seq: 20,
            purged_seq: 10,
        };
        assert!(!caught_up.expired(15));
        assert!(!caught_up.expired(20));
        assert!(caught_up.expired(21));
        // v1 cursors (recorded state 0): below the purged sequence, as before.
        let v1 = Cursor {
            seq: 5,
            purged_seq: 0,
        };
        assert!(!v1.expired(0) && !v1.expired(5) && v1.expired(6));
    }
}
