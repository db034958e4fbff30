//! Time as the server stores it (unix milliseconds) and as the protocol shows it (RFC 3339 UTC).
//! "Now" always comes from the server's [`Clock`] (`AppState::clock`): the system clock, or a
//! [`ManualClock`] a test moves.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use tandem_protocol::clock::Clock;

/// `ms` as an RFC 3339 UTC string with millisecond precision.
pub fn rfc3339_from_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let t = t
        .replace_nanosecond((ms.rem_euclid(1000) as u32) * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Whether `text` is an RFC 3339 timestamp.
pub fn is_rfc3339(text: &str) -> bool {
    OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339_from_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_from_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert!(is_rfc3339("2025-01-01T10:00:00+02:00"));
        assert!(!is_rfc3339("yesterday"));
    }
}
