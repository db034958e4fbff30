//! What the app does about conflicts and dead letters: `resolve` a conflict (keep mine, keep the
//! server's, or a merged document) and `discard` a rejected change.

use serde_json::Value;

use super::conflict::{self, ConflictRow};
use super::merge::Side;
use super::reconcile::{self, ServerState};
use crate::engine::{now_ms, stored_form, Engine};
use crate::error::{Error, Result};
use crate::outbox;
use crate::records::{self, RecordRow, RecordState};
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
    let row = engine.store().write(|tx| {
        let open = conflict::get(tx, collection, id)?.ok_or_else(|| no_conflict(collection, id))?;
        let row =
            records::load(tx, collection, id)?.ok_or_else(|| Error::not_found(collection, id))?;
        let server = ServerState::of(&open);
        let desired = match resolution {
            Resolution::KeepServer => open.settled(Side::Server)?,
            Resolution::KeepMine => open.settled(Side::Local)?,
            Resolution::Merged(_) => merged,
        };
        reconcile::settle_to(tx, schema, &row, &server, desired.as_deref(), now)?;
        records::load_live(tx, collection, id)
    })?;
    engine.committed([collection.to_string()].into());
    Ok(row)
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
/// the server never had it), unless newer local changes of it wait to be sent.
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
