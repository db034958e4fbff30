//! Identifier rules of the protocol: entity ids, op ids and client ids, collection names and field
//! names. Field names are restricted further than JSON allows because the engine turns them into
//! SQLite JSON paths and index names.

/// Longest id (entity, op or client id) the protocol accepts.
pub const MAX_ID_LEN: usize = 128;

/// Ids are 1..=128 characters from `[A-Za-z0-9_.:-]` (UUIDs fit).
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Collection names match `^[a-z][a-z0-9_]{0,62}$`.
pub fn is_valid_collection_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Field names match `^[A-Za-z_][A-Za-z0-9_]{0,63}$`.
pub fn is_valid_field_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("0191d1c2-7a8b-7c3d-9e0f-a1b2c3d4e5f6"));
        assert!(is_valid_id("a"));
        assert!(is_valid_id("user:42.x_y-z"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("has space"));
        assert!(!is_valid_id("slash/"));
        assert!(!is_valid_id("é"));
        assert!(is_valid_id(&"x".repeat(128)));
        assert!(!is_valid_id(&"x".repeat(129)));
    }

    #[test]
    fn collection_names() {
        assert!(is_valid_collection_name("plans"));
        assert!(is_valid_collection_name("plan_days2"));
        assert!(!is_valid_collection_name("Plans"));
        assert!(!is_valid_collection_name("2plans"));
        assert!(!is_valid_collection_name("_plans"));
        assert!(!is_valid_collection_name("plan-days"));
        assert!(!is_valid_collection_name(""));
        assert!(is_valid_collection_name(&format!("a{}", "b".repeat(62))));
        assert!(!is_valid_collection_name(&format!("a{}", "b".repeat(63))));
    }

    #[test]
    fn field_names() {
        assert!(is_valid_field_name("planId"));
        assert!(is_valid_field_name("_x1"));
        assert!(!is_valid_field_name("1x"));
        assert!(!is_valid_field_name("a.b"));
        assert!(!is_valid_field_name("a'b"));
        assert!(!is_valid_field_name(""));
    }
}
