//! Pull cursors: a position in one user's change sequence, plus the user's purge state when the
//! cursor was issued, signed so that a cursor the server never issued (garbage, edited, or another
//! user's) is told apart from a real one. The format `c2.<seq>.<purged>.<mac>` is opaque to
//! clients; `c1.<seq>.<mac>` cursors, issued before the purge state was recorded, still decode
//! (with a recorded purge state of 0, which expires them exactly as before).
//!
//! Cursors of the stream form of a pull (one per stream: `user`, `public`, `space:<id>`) are
//! `c3.<seq>.<purged>.<mac>`, the MAC over `c3:<user id>:<stream wire name>:<seq>:<purged>`: the
//! stream is in the MAC, not in the text, so a cursor moved to another stream key, another user
//! or another server fails to decode. `c2`/`c1` cursors stay valid for the `user` key only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tandem_protocol::StreamKey;

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

    /// The cursor for `cursor` of stream `stream` as pulled by `user_id` (format v3).
    #[allow(dead_code)] // until the stream form of a pull (routes/sync.rs) calls it
    pub fn encode_stream(&self, user_id: &str, stream: &StreamKey, cursor: Cursor) -> String {
        let Cursor { seq, purged_seq } = cursor;
        format!(
            "c3.{seq}.{purged_seq}.{}",
            self.mac(
                &[
                    user_id,
                    &stream.as_wire(),
                    &seq.to_string(),
                    &purged_seq.to_string()
                ],
                V3
            )
        )
    }

    /// What a cursor issued to `user_id` for `stream` says, or `None` when it was not: a `c3`
    /// cursor of another stream, user or server, or a `c2`/`c1` cursor for any stream but `user`.
    #[allow(dead_code)] // until the stream form of a pull (routes/sync.rs) calls it
    pub fn decode_stream(&self, user_id: &str, stream: &StreamKey, cursor: &str) -> Option<Cursor> {
        if let Some(rest) = cursor.strip_prefix("c3.") {
            return self.decode_v3(user_id, stream, rest);
        }
        match stream {
            StreamKey::User => self.decode(user_id, cursor),
            StreamKey::Public | StreamKey::Space(_) => None,
        }
    }

    /// What a cursor issued to `user_id` says, or `None` when it was not issued to them. A `c3`
    /// cursor of the `user` stream (a client going back to the cursor form) decodes too.
    pub fn decode(&self, user_id: &str, cursor: &str) -> Option<Cursor> {
        if let Some(rest) = cursor.strip_prefix("c3.") {
            return self.decode_v3(user_id, &StreamKey::User, rest);
        }
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

    fn decode_v3(&self, user_id: &str, stream: &StreamKey, rest: &str) -> Option<Cursor> {
        let mut parts = rest.split('.');
        let (seq, purged, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (seq, purged_seq) = (parse_number(seq)?, parse_number(purged)?);
        self.verify(
            &[
                user_id,
                &stream.as_wire(),
                &seq.to_string(),
                &purged_seq.to_string(),
            ],
            V3,
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

    /// The MAC input is the fields joined by `:`; v2 and v3 also mix in their version first, so
    /// that no cursor's MAC can ever pass as another version's whatever the fields hold. v1 mixes
    /// in nothing: cursors already handed out must keep verifying.
    fn hmac(&self, fields: &[&str], version: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(version);
        mac.update(fields.join(":").as_bytes());
        mac
    }
}

const V1: &[u8] = b"";
const V2: &[u8] = b"c2:";
const V3: &[u8] = b"c3:";

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
    fn v3_round_trips_per_stream_and_refuses_other_keys_users_and_secrets() {
        let codec = CursorCodec::new(b"secret");
        let streams = [
            StreamKey::User,
            StreamKey::Public,
            StreamKey::Space("s1".into()),
            StreamKey::Space("s2".into()),
        ];
        for stream in &streams {
            let c = codec.encode_stream("u1", stream, AT_42);
            assert!(c.starts_with("c3.42.7."), "{c}");
            assert_eq!(codec.decode_stream("u1", stream, &c), Some(AT_42));
            for other in streams.iter().filter(|o| *o != stream) {
                assert_eq!(
                    codec.decode_stream("u1", other, &c),
                    None,
                    "{stream} as {other}"
                );
            }
            assert_eq!(codec.decode_stream("u2", stream, &c), None);
            assert_eq!(
                CursorCodec::new(b"other").decode_stream("u1", stream, &c),
                None
            );
            assert_eq!(
                codec.decode_stream("u1", stream, &c.replace(".42.", ".43.")),
                None
            );
            assert_eq!(
                codec.decode_stream("u1", stream, &c.replace(".7.", ".07.")),
                None
            );
            assert_eq!(codec.decode_stream("u1", stream, &format!("{c}.x")), None);
            assert_eq!(codec.decode_stream("u1", stream, &c[..c.len() - 2]), None);
            // A v3 MAC never passes as a v2 one.
            assert_eq!(codec.decode("u1", &c.replacen("c3.", "c2.", 1)), None);
        }
        // The MAC input is exactly `c3:<user>:<stream>:<seq>:<purged>` (for other servers).
        let mut expected =
            HmacSha256::new_from_slice(b"tandem-cursor-v1:secret").expect("any key length");
        expected.update(b"c3:u1:space:s1:42:7");
        let full = expected.finalize().into_bytes();
        assert_eq!(
            codec.encode_stream("u1", &StreamKey::Space("s1".into()), AT_42),
            format!("c3.42.7.{}", URL_SAFE_NO_PAD.encode(&full[..MAC_BYTES]))
        );
        // A user-stream v3 cursor also serves the cursor form of a pull.
        let user = codec.encode_stream("u1", &StreamKey::User, AT_42);
        assert_eq!(codec.decode("u1", &user), Some(AT_42));
        let space = codec.encode_stream("u1", &StreamKey::Space("s1".into()), AT_42);
        assert_eq!(codec.decode("u1", &space), None);
    }

    #[test]
    fn c2_and_c1_cursors_hold_for_the_user_stream_only() {
        let codec = CursorCodec::new(b"secret");
        let v2 = codec.encode("u1", AT_42);
        let v1 = format!("c1.42.{}", codec.mac(&["u1", "42"], V1));
        for old in [&v2, &v1] {
            assert!(codec.decode_stream("u1", &StreamKey::User, old).is_some());
            assert_eq!(codec.decode_stream("u2", &StreamKey::User, old), None);
            assert_eq!(codec.decode_stream("u1", &StreamKey::Public, old), None);
            assert_eq!(
                codec.decode_stream("u1", &StreamKey::Space("s1".into()), old),
                None
            );
        }
        assert_eq!(
            codec.decode_stream("u1", &StreamKey::User, &v2),
            Some(AT_42)
        );
        assert_eq!(codec.decode_stream("u1", &StreamKey::User, "garbage"), None);
        assert_eq!(
            codec.decode_stream("u1", &StreamKey::Public, "garbage"),
            None
        );
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
