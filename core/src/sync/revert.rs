//! `revert`: a record's unsent changes dropped and the server's state restored, in one
//! transaction. What "the server's state" is comes from the record's stored server copy
//! (`server_doc`, `server_version`), which every push answer and pull keeps current.

use super::reconcile::{self, ServerState};
use crate::engine::{now_ms, Engine};
use crate::error::{Error, Result};
use crate::records::{self, RecordRow, RecordState};
use crate::sync::conflict;
use crate::{outbox, schema};

/// What a revert did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reverted {
    /// The record afterwards; `None` when it does not show (never synced, deleted on the server,
    /// or hidden under a parent deleted here).
    pub record: Option<RecordRow>,
    /// Whether anything changed: a record already at the server's state is left alone.
    pub changed: bool,
}

/// Drops every outbox entry of `collection/id` (pending, in flight and dead letters) and its open
/// conflict, and puts the record back to the server's copy:
/// - a record the server has shows the server's document again (hidden while its parent is
///   deleted here); records a local delete of it had hidden below it show again;
/// - a record the server deleted goes, with what lies below it;
/// - a record the server never had disappears, and so does everything created below it here
///   (a child another device synced under a different parent goes back to the server's state).
///
/// Other records' changes stay as they are. A change already sent (in flight, or its answer
/// lost) may still land on the server: its answer, if it comes, is ignored, and the next pull
/// brings the server's new state like any other device's change.
pub fn revert(engine: &Engine, collection: &str, id: &str) -> Result<Reverted> {
    schema::declared(engine.schema(), collection)?;
    if !tandem_protocol::is_valid_id(id) {
        return Err(Error::invalid(
            "ids are 1 to 128 characters from [A-Za-z0-9_.:-]",
        ));
    }
    let schema = engine.schema();
    let now = now_ms();
    let reverted = engine.store().write(|tx| {
        let row =
            records::load(tx, collection, id)?.ok_or_else(|| Error::not_found(collection, id))?;
        let local_change = outbox::has_entries(tx, collection, id)?
            || conflict::get(tx, collection, id)?.is_some()
            || row.state != RecordState::Synced;
        if !local_change {
            return Ok(Reverted {
                record: records::load_live(tx, collection, id)?,
                changed: false,
            });
        }
        outbox::drop_all(tx, collection, id)?;
        conflict::remove(tx, collection, id)?;
        if row.server_version == 0 {
            // Never synced: nothing of it exists on the server, nor below it.
            reconcile::remove_descendants(tx, schema, collection, id)?;
            records::remove(tx, collection, id)?;
        } else {
            let server = ServerState::untimed(row.server_version, row.server_doc.clone());
            reconcile::adopt_server(tx, schema, &row, &server, now)?;
        }
        Ok(Reverted {
            record: records::load_live(tx, collection, id)?,
            changed: true,
        })
    })?;
    if reverted.changed {
        tracing::info!(collection, "record reverted to the server's state");
        engine.committed([collection.to_string()].into());
    }
    Ok(reverted)
}
