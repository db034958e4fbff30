//! Accounts and credentials: password hashing, refresh tokens, email rules and the limit on
//! failed sign-ins. The HTTP side is in `routes::auth`.

pub mod attempt_limit;
pub mod passwords;
pub mod refresh_tokens;

/// Shortest password accepted by default, in characters: GoTrue's default
/// (`GOTRUE_PASSWORD_MIN_LENGTH`), so an account is valid on either server.
/// `--min-password-length` changes it.
pub const MIN_PASSWORD_CHARS: usize = 6;

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

/// External auth mode: makes sure the user of a verified token has its row (docs/protocol.md,
/// "External auth mode"). A row is made on the user's first request, with the token's `email`
/// when it is a plausible one not taken by another user, else `<sub>@external.invalid` (a
/// reserved domain, no mailbox); a later token with another email updates it (unless taken).
/// External users have no password: the server's own sign-in refuses them. One read per
/// request; writes only for a new user or a changed email.
pub async fn provision(
    state: &crate::routes::SharedState,
    claims: &tandem_protocol::AccessClaims,
) -> Result<(), crate::error::ApiError> {
    let email = normalize_email(&claims.email);
    let email = (is_plausible_email(&email) && email.len() <= tandem_protocol::MAX_EMAIL_LEN)
        .then_some(email);
    match state.storage.user_by_id(&claims.sub).await? {
        Some(row) => {
            if let Some(email) = email.filter(|e| *e != row.email) {
                if !state.storage.update_user_email(&claims.sub, &email).await? {
                    tracing::info!(user_id = %claims.sub, "the issuer's new email of a user is another user's; kept the old one");
                }
            }
        }
        None => {
            let now_ms = state.clock.now_ms();
            let row = |email: String| crate::storage::UserRow {
                id: claims.sub.clone(),
                email,
                password_hash: String::new(),
                created_at_ms: now_ms,
            };
            let placeholder = placeholder_email(&claims.sub);
            let first = row(email.unwrap_or_else(|| placeholder.clone()));
            if state.storage.insert_user_if_absent(first).await? {
                tracing::info!(user_id = %claims.sub, "provisioned a user of the external issuer");
            } else if state.storage.user_by_id(&claims.sub).await?.is_none() {
                // The email is another user's: the row gets the placeholder.
                state
                    .storage
                    .insert_user_if_absent(row(placeholder))
                    .await?;
                tracing::info!(user_id = %claims.sub, "provisioned a user of the external issuer (its email is another user's)");
            }
        }
    }
    Ok(())
}

/// The stored email of an external user whose token has none (or one another user has).
pub fn placeholder_email(user_id: &str) -> String {
    format!("{}@external.invalid", user_id.to_lowercase())
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
