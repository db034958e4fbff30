//! `--conflict-policy`: how this device settles sync conflicts, kept in the data directory's
//! `cli.json` once given, so later commands (and `watch`) keep it; `status` shows it.

use tandem::ConflictPolicy;

/// Every policy by its command-line name, in the order `--help` lists them. A new policy is one
/// line here.
pub const POLICIES: &[(&str, ConflictPolicy)] = &[
    ("merge", ConflictPolicy::Merge),
    ("server-wins", ConflictPolicy::ServerWins),
    ("client-wins", ConflictPolicy::ClientWins),
    ("manual", ConflictPolicy::Manual),
    ("last-write-wins", ConflictPolicy::LastWriteWins),
];

/// The policy when none was ever chosen: the engine's default.
pub const DEFAULT: &str = "merge";

/// The policy a name stands for.
pub fn by_name(name: &str) -> Option<ConflictPolicy> {
    POLICIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, policy)| *policy)
}

/// The names, for clap's list of possible values.
pub fn names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(POLICIES.iter().map(|(name, _)| *name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_distinct_policies_and_the_default_is_one_of_them() {
        for (i, (name, policy)) in POLICIES.iter().enumerate() {
            assert_eq!(by_name(name), Some(*policy));
            assert!(POLICIES[i + 1..]
                .iter()
                .all(|(n, p)| n != name && p != policy));
        }
        assert!(by_name(DEFAULT).is_some());
        assert_eq!(by_name("lww"), None);
    }
}
