//! `tandem revert COLLECTION ID`: drops a record's unsent changes and restores the server's
//! state. It throws work away, so it asks first on a terminal; elsewhere `--yes` says so.

use serde_json::json;
use tandem::Tandem;

use crate::commands::Reply;
use crate::error::CliError;
use crate::input;
use crate::render;

pub fn run(tandem: &Tandem, collection: String, id: String, yes: bool) -> Result<Reply, CliError> {
    let unsent = unsent_of(tandem, &collection, &id)?;
    let conflicted = tandem
        .conflicts()?
        .iter()
        .any(|c| c.collection == collection && c.id == id);
    // With nothing to drop there is nothing to confirm (and a missing record is `not_found`).
    if !yes && (unsent > 0 || conflicted) {
        confirm(&collection, &id, unsent, conflicted)?;
    }
    let reverted = tandem.revert(collection.clone(), id.clone())?;
    let record = reverted.record.as_ref().map(render::record_json);
    let text = match (&reverted.record, reverted.changed) {
        (_, false) => format!("{collection}/{id} has no unsent change; nothing to revert"),
        (Some(record), true) => format!(
            "reverted to the server's state: {}",
            render::record_line(record)
        ),
        (None, true) => format!(
            "reverted {collection}/{id}: at the server's state it does not show (never synced, deleted, or under a parent deleted here)"
        ),
    };
    Ok(Reply::new(
        json!({ "reverted": reverted.changed, "record": record }),
        text,
    ))
}

/// How many outbox entries (unsent or refused) the record has.
fn unsent_of(tandem: &Tandem, collection: &str, id: &str) -> Result<usize, CliError> {
    Ok(tandem
        .outbox()?
        .iter()
        .filter(|e| e.collection == collection && e.id == id)
        .count())
}

fn confirm(collection: &str, id: &str, changes: usize, conflicted: bool) -> Result<(), CliError> {
    let conflict = if conflicted {
        " and its open conflict"
    } else {
        ""
    };
    input::confirm(
        &format!("revert drops the unsent changes of {collection}/{id}"),
        &format!(
            "Drop {changes} unsent change(s){conflict} of {collection}/{id} and restore the server's state?"
        ),
        "nothing reverted",
    )
}
