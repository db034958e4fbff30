//! Accounts and credentials: password hashing, refresh tokens, email rules and the limit on
//! failed sign-ins. The HTTP side is in `routes::auth`.

pub mod attempt_limit;
pub mod passwords;
pub mod refresh_tokens;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Emails are compared and stored trimmed and lower-cased, as GoTrue does.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// `local@domain`: one `@`, something on both sides, no whitespace or control characters.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_plausible_email("a@b"));
        assert!(is_plausible_email("first.last+tag@example.com"));
        assert!(!is_plausible_email("ab"));
        assert!(!is_plausible_email("@b"));
        assert!(!is_plausible_email("a@"));
        assert!(!is_plausible_email("a@b@c"));
        assert!(!is_plausible_email("a b@c"));
        assert_eq!(normalize_email(" A@B.com "), "a@b.com");
    }
}
