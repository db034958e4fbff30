//! Last-write-wins by edit time (`ConflictPolicy::LastWriteWins`): a conflict is settled per
//! field by the edit times (hybrid logical clock, see `tandem_protocol::hlc`) both sides carry,
//! with no user involvement. The rule (docs/protocol.md, "Last-write-wins"):
//!
//! - **Both sides live**: each field (set or removed on either side) takes the value of the side
//!   whose edit time for it is later; a field without a time loses to one with a time, and
//!   between two equal or missing times the server's side stays. Edit times include the device
//!   as a tiebreak, so two different edits never tie.
//! - **Edit against delete**: the delete's edit time against the latest edit time of the live
//!   side. An edit made after the delete brings the record back (as the editing side has it); a
//!   delete made after every edit of the record wins. On a tie (or with no times) the server's
//!   side stays.
//!
//! Because each field ends with the value of its latest edit whatever order devices sync in,
//! every device converges to the same document: the server's, which holds the latest of each.

use serde_json::Value;
use tandem_protocol::{FieldTimes, Hlc};

use super::merge::Doc;
use crate::edit_time::{effective, parse_times};

/// One side of a conflict: its document (`None`: deleted) and edit times.
#[derive(Debug, Clone, PartialEq)]
pub struct Side<'a> {
    pub doc: Option<&'a Doc>,
    /// The time of its last change (of the delete, when deleted).
    pub edited_at: Option<Hlc>,
    pub fields: FieldTimes,
}

impl<'a> Side<'a> {
    /// A side from stored texts (unreadable times count as unknown). Stored field times are
    /// sparse: a field of the document without a time of its own was edited at `edited_at`
    /// (`edit_time::effective`), as the server reads a mutation's `fieldEditedAt`.
    pub fn of(doc: Option<&'a Doc>, edited_at: Option<&str>, fields: Option<&str>) -> Self {
        let edited_at: Option<Hlc> = edited_at.and_then(|t| t.parse().ok());
        let fields = effective(doc, edited_at.as_ref(), parse_times(fields));
        Self {
            doc,
            edited_at,
            fields,
        }
    }

    /// The latest edit time of the side: its record time or any field's.
    fn latest(&self) -> Option<&Hlc> {
        self.fields.values().chain(self.edited_at.as_ref()).max()
    }
}

/// How a conflict settles.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server's state stands.
    Server,
    /// Send this (`None`: the delete), based on the server's version, with these times.
    Rebase {
        doc: Option<Doc>,
        edited_at: Option<Hlc>,
        field_times: FieldTimes,
    },
}

/// Settles `local` against `server` by edit time.
pub fn resolve(local: &Side<'_>, server: &Side<'_>) -> Outcome {
    match (local.doc, server.doc) {
        (None, None) => Outcome::Server,
        (Some(doc), None) => {
            // An edit against the server's delete: the edit wins only when made after it.
            if local.latest() > server.edited_at.as_ref() {
                Outcome::Rebase {
                    doc: Some(doc.clone()),
                    edited_at: local.latest().cloned(),
                    field_times: local.fields.clone(),
                }
            } else {
                Outcome::Server
            }
        }
        (None, Some(_)) => {
            // A delete against the server's edits: the delete wins only when made after them all.
            if local.edited_at.as_ref() > server.latest() {
                Outcome::Rebase {
                    doc: None,
                    edited_at: local.edited_at.clone(),
                    field_times: FieldTimes::new(),
                }
            } else {
                Outcome::Server
            }
        }
        (Some(mine), Some(theirs)) => {
            let (merged, times) = per_field(mine, &local.fields, theirs, &server.fields);
            if &merged == theirs {
                return Outcome::Server;
            }
            let edited_at = times
                .values()
                .chain(local.edited_at.as_ref())
                .chain(server.edited_at.as_ref())
                .max()
                .cloned();
            Outcome::Rebase {
                doc: Some(merged),
                edited_at,
                field_times: times,
            }
        }
    }
}

/// Each field from the side that edited it last (the server's on a tie).
fn per_field(
    mine: &Doc,
    my_times: &FieldTimes,
    theirs: &Doc,
    their_times: &FieldTimes,
) -> (Doc, FieldTimes) {
    let mut merged = Doc::new();
    let mut times = FieldTimes::new();
    let keys: std::collections::BTreeSet<&String> = mine
        .keys()
        .chain(theirs.keys())
        .chain(my_times.keys())
        .chain(their_times.keys())
        .collect();
    for key in keys {
        let (mt, tt) = (my_times.get(key), their_times.get(key));
        let (value, time): (Option<&Value>, Option<&Hlc>) = if mt > tt {
            (mine.get(key), mt)
        } else {
            (theirs.get(key), tt)
        };
        if let Some(value) = value {
            merged.insert(key.clone(), value.clone());
        }
        if let Some(time) = time {
            times.insert(key.clone(), time.clone());
        }
    }
    (merged, times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        v.as_object().unwrap().clone()
    }

    fn t(ms: i64, node: &str) -> Hlc {
        Hlc::new(ms, 0, node)
    }

    fn times(pairs: &[(&str, Hlc)]) -> FieldTimes {
        pairs
            .iter()
            .map(|(k, t)| (k.to_string(), t.clone()))
            .collect()
    }

    #[test]
    fn each_field_takes_its_latest_edit() {
        let mine = doc(json!({"name": "mine", "notes": "old", "archived": true}));
        let theirs = doc(json!({"name": "theirs", "notes": "theirs"}));
        let local = Side {
            doc: Some(&mine),
            edited_at: Some(t(30, "a")),
            fields: times(&[
                ("name", t(30, "a")),
                ("notes", t(10, "a")),
                ("archived", t(30, "a")),
            ]),
        };
        let server = Side {
            doc: Some(&theirs),
            edited_at: Some(t(20, "b")),
            fields: times(&[
                ("name", t(20, "b")),
                ("notes", t(20, "b")),
                ("archived", t(25, "b")), // removed on the server before the local set
            ]),
        };
        let Outcome::Rebase {
            doc: Some(merged),
            edited_at,
            field_times,
        } = resolve(&local, &server)
        else {
            panic!("rebase expected")
        };
        assert_eq!(
            merged,
            doc(json!({"name": "mine", "notes": "theirs", "archived": true}))
        );
        assert_eq!(edited_at, Some(t(30, "a")));
        assert_eq!(field_times["notes"], t(20, "b"));
        // Seen from the other side, the same document.
        let back = resolve(
            &Side {
                doc: Some(&theirs),
                ..server.clone()
            },
            &Side {
                doc: Some(&merged),
                edited_at: Some(t(30, "a")),
                fields: field_times.clone(),
            },
        );
        assert_eq!(back, Outcome::Server);
    }

    #[test]
    fn ties_go_by_device_and_missing_times_lose() {
        let mine = doc(json!({"name": "a"}));
        let theirs = doc(json!({"name": "b"}));
        let side = |d, node: &str| Side {
            doc: Some(d),
            edited_at: Some(t(5, node)),
            fields: times(&[("name", t(5, node))]),
        };
        // Same millisecond and counter: the device id decides, the same way on both devices.
        assert!(matches!(
            resolve(&side(&mine, "z"), &side(&theirs, "a")),
            Outcome::Rebase { .. }
        ));
        assert_eq!(
            resolve(&side(&mine, "a"), &side(&theirs, "z")),
            Outcome::Server
        );
        let untimed = Side {
            doc: Some(&mine),
            edited_at: None,
            fields: FieldTimes::new(),
        };
        assert_eq!(resolve(&untimed, &side(&theirs, "a")), Outcome::Server);
        let untimed_server = Side {
            doc: Some(&theirs),
            ..untimed.clone()
        };
        assert!(matches!(
            resolve(&side(&mine, "a"), &untimed_server),
            Outcome::Rebase { .. }
        ));
        assert_eq!(resolve(&untimed, &untimed_server), Outcome::Server);
    }

    #[test]
    fn edit_against_delete_goes_by_the_delete_time() {
        let live = doc(json!({"name": "x"}));
        let edit = |ms| Side {
            doc: Some(&live),
            edited_at: Some(t(ms, "a")),
            fields: times(&[("name", t(ms, "a"))]),
        };
        let delete = |ms| Side {
            doc: None,
            edited_at: Some(t(ms, "b")),
            fields: FieldTimes::new(),
        };
        // Local edit after the server's delete: the record comes back.
        assert!(matches!(
            resolve(&edit(20), &delete(10)),
            Outcome::Rebase { doc: Some(_), .. }
        ));
        // Local edit before it: the delete stands.
        assert_eq!(resolve(&edit(5), &delete(10)), Outcome::Server);
        // Local delete after the server's edit: the delete is sent.
        assert!(matches!(
            resolve(&delete(30), &edit(20)),
            Outcome::Rebase { doc: None, .. }
        ));
        assert_eq!(resolve(&delete(10), &edit(20)), Outcome::Server);
        assert_eq!(resolve(&delete(10), &delete(20)), Outcome::Server);
    }
}
