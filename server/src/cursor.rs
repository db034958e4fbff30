//! Pull cursors: a position in one user's change sequence, signed so that a cursor the server
//! never issued (garbage, edited, or another user's) is told apart from a real one. The format
//! `c1.<seq>.<mac>` is opaque to clients.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

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

    /// The cursor for position `seq` of `user_id`'s changes.
    pub fn encode(&self, user_id: &str, seq: i64) -> String {
        format!("c1.{seq}.{}", self.mac(user_id, seq))
    }

    /// The position of a cursor issued to `user_id`, or `None` when it was not.
    pub fn decode(&self, user_id: &str, cursor: &str) -> Option<i64> {
        let rest = cursor.strip_prefix("c1.")?;
        let (seq_text, mac) = rest.split_once('.')?;
        let seq: i64 = seq_text.parse().ok()?;
        if seq < 0 || seq.to_string() != seq_text {
            return None;
        }
        let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.hmac(user_id, seq);
        expected.verify_truncated_left(&given).ok()?;
        (given.len() == MAC_BYTES).then_some(seq)
    }

    fn mac(&self, user_id: &str, seq: i64) -> String {
        let full = self.hmac(user_id, seq).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&full[..MAC_BYTES])
    }

    fn hmac(&self, user_id: &str, seq: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(user_id.as_bytes());
        mac.update(b":");
        mac.update(seq.to_string().as_bytes());
        mac
    }
}

/// 128 bits of MAC: plenty against forgery, short in the JSON.
const MAC_BYTES: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_cursors() {
        let codec = CursorCodec::new(b"secret");
        let c = codec.encode("u1", 42);
        assert_eq!(codec.decode("u1", &c), Some(42));
        assert_eq!(codec.decode("u2", &c), None);
        assert_eq!(CursorCodec::new(b"other").decode("u1", &c), None);
        assert_eq!(codec.decode("u1", &c.replace("42", "43")), None);
        assert_eq!(codec.decode("u1", "garbage"), None);
        assert_eq!(codec.decode("u1", "c1.42."), None);
        assert_eq!(codec.decode("u1", "c1.-1.AAAA"), None);
        assert_eq!(codec.decode("u1", &c[..c.len() - 2]), None);
    }
}
