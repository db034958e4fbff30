//! What the app does about conflicts and dead letters: `resolve` a conflict (keep mine, keep the
//! server's, or a merged document) and `discard` a rejected change.

use serde_json::Value;

use super::conflict::{self, ConflictReason, ConflictRow};
use super::merge::Side;
use super::reconcile::{self, ServerState};
use crate::engine::{now_ms, stored_form, Engine};
use crate::error::{Error, Result};
use crate::outbox;
use crate::records::{self, RecordRow, RecordState};
use crate::refs;
use crate::schema;

/// The app's answer to a conflict. Keep-mine and keep-server settle only what both sides
/// changed: every change only one side made stays, whichever side is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Take the local side for what both sides changed (or the local edit or delete against the
    /// server's delete or edit), based on the server's version.
    KeepMine,
    /// Take the server's side for what both sides changed (or its edit or delete).
    KeepServer,
    /// Send this document (validated against the schema), based on the server's version.
    Merged(Value),
}

/// Settles the open conflict of `collection/id`. Returns the record afterwards (`None` when it
/// ends up deleted).
pub fn resolve(
    engine: &Engine,
    collection: &str,
    id: &str,
    resolution: Resolution,
) -> Result<Option<RecordRow>> {
    let schema = engine.schema();
    let merged = match &resolution {
        Resolution::Merged(doc) => Some(validated(engine, collection, doc)?),
        _ => None,
    };
    let now = now_ms();
    let mut changed: std::collections::BTreeSet<String> = [collection.to_string()].into();
    let row = engine.store().write(|tx| {
        let open = conflict::get(tx, collection, id)?.ok_or_else(|| no_conflict(collection, id))?;
        let row =
            records::load(tx, collection, id)?.ok_or_else(|| Error::not_found(collection, id))?;
        let server = ServerState::of(&open);
        if open.reason == ConflictReason::UniqueViolation && resolution == Resolution::KeepMine {
            // Keep mine: the record holding the key goes first (its delete is queued before
            // mine, with its own reference rules), then mine is sent.
            changed.extend(delete_holder(tx, engine, &open, now)?);
        }
        let resolution_keeps_mine = resolution == Resolution::KeepMine;
        let desired = match resolution {
            Resolution::KeepServer => open.settled(Side::Server)?,
            Resolution::KeepMine => open.settled(Side::Local)?,
            Resolution::Merged(_) => merged,
        };
        if let (Resolution::Merged(_), Some(doc)) = (&resolution, desired.as_deref()) {
            // A merged document is a new write: its references and unique keys are checked
            // (keeping both sides of a unique violation means giving mine another key).
            let declared = schema::declared(schema, collection)?;
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(doc) {
                let space = row.space_id.as_deref();
                refs::check_refs(tx, declared, collection, id, &map, space)?;
                refs::check_unique(tx, declared, collection, id, &map, space)?;
            }
        }
        let holder_first = open.reason == ConflictReason::UniqueViolation && resolution_keeps_mine;
        reconcile::settle_to(tx, schema, &row, &server, desired.as_deref(), now)?;
        if holder_first {
            // A member of an atomic group goes back into its group, whose place is before the
            // holder's delete just queued: the group goes after it, or the server would meet the
            // key still held and fail the group again.
            if let Some(place) = outbox::group_of_record(tx, collection, id)? {
                outbox::send_group_after_the_rest(tx, &place.group)?;
            }
        }
        records::load_live(tx, collection, id)
    })?;
    engine.committed(changed);
    Ok(row)
}

/// Deletes, locally and with its own outbox entry, the record that holds the key of a
/// `UniqueViolation` conflict. It must have been pulled: its version is the delete's base.
fn delete_holder(
    tx: &rusqlite::Transaction<'_>,
    engine: &Engine,
    open: &ConflictRow,
    now: i64,
) -> Result<std::collections::BTreeSet<String>> {
    let existing_id = open
        .existing_id
        .as_deref()
        .ok_or_else(|| Error::Corrupt("a unique_violation conflict without existing_id".into()))?;
    let Some(existing) = records::load_live(tx, &open.collection, existing_id)? else {
        return Err(Error::invalid(format!(
            "{}/{existing_id}, which holds the key, is not on this device yet: sync, then resolve again",
            open.collection
        )));
    };
    let mut deletion = refs::Deletion::new(tx, engine.schema(), now, refs::Mode::Local);
    deletion.delete(&existing)?;
    Ok(deletion.changed)
}

fn no_conflict(collection: &str, id: &str) -> Error {
    Error::invalid(format!("{collection}/{id} has no open conflict"))
}

/// Checks a merged document like a put would, returning its stored form.
fn validated(engine: &Engine, collection: &str, doc: &Value) -> Result<String> {
    let declared = schema::declared(engine.schema(), collection)?;
    Ok(stored_form(declared, collection, doc.clone())?.1)
}

/// Open conflicts, oldest first.
pub fn conflicts(engine: &Engine) -> Result<Vec<ConflictRow>> {
    engine.store().read(conflict::list)
}

/// Drops the dead letter `op_id`. The record goes back to the server's state (or disappears when
/// the server never had it), unless newer local changes of it wait to be sent. A dead letter of
/// an atomic group held the rest of the group back: they go now, with the record's newer change
/// (if any) in the dead letter's place.
pub fn discard_rejected(engine: &Engine, op_id: &str) -> Result<()> {
    let schema = engine.schema();
    let now = now_ms();
    let collection = engine.store().write(|tx| {
        let entry = outbox::rejected_by_op_id(tx, op_id)?
            .ok_or_else(|| Error::invalid(format!("no rejected change has op id {op_id}")))?;
        outbox::remove(tx, entry.seq)?;
        let (collection, id) = (entry.collection.as_str(), entry.entity_id.as_str());
        let Some(row) = records::load(tx, collection, id)? else {
            return Ok(entry.collection);
        };
        if !outbox::unsent_for_record(tx, collection, id)?.is_empty() {
            // The dead letter held its group back; the record's newer change (a correction
            // written since) takes its place in the group.
            if let Some(group) = &entry.group_id {
                let place = outbox::GroupPlace {
                    group: group.clone(),
                    seq: entry.seq,
                };
                outbox::join_group(tx, collection, id, &place)?;
            }
            if row.state == RecordState::Rejected {
                records::save(
                    tx,
                    &RecordRow {
                        state: RecordState::Pending,
                        ..row
                    },
                )?;
            }
            return Ok(entry.collection);
        }
        let server = ServerState::untimed(row.server_version, row.server_doc.clone());
        reconcile::adopt_server(tx, schema, &row, &server, now)?;
        Ok(entry.collection)
    })?;
    engine.committed([collection].into());
    Ok(())
}
