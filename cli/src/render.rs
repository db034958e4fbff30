//! How the engine's values print: as JSON (`--json`, camelCase keys) and as lines for people.

use std::time::SystemTime;

use serde_json::{json, Value};
use tandem::{
    ChangeKind, Conflict, ConflictReason, OutboxEntry, OutboxState, OutcomeKind, PushOutcome,
    Record, RecordState, RejectedChange, SyncPhase, SyncReport, SyncStatus, User,
};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T03:44:16.120Z` (always three digits, so
/// the strings sort as the times do).
pub fn timestamp(at: SystemTime) -> String {
    const FORMAT: &[BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from(at).format(FORMAT).unwrap_or_default()
}

/// A document's JSON text as a value (the engine only ever hands out valid JSON).
fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn optional_document(text: Option<&str>) -> Value {
    text.map_or(Value::Null, document)
}

pub fn record_state(state: RecordState) -> &'static str {
    match state {
        RecordState::Synced => "synced",
        RecordState::Pending => "pending",
        RecordState::Conflicted => "conflicted",
        RecordState::Rejected => "rejected",
    }
}

/// A record; `space` only for a record of a space.
pub fn record_json(record: &Record) -> Value {
    let mut json = json!({
        "collection": record.collection,
        "id": record.id,
        "doc": document(&record.document),
        "version": record.version,
        "state": record_state(record.state),
        "updatedAt": timestamp(record.updated_at),
    });
    if let Some(space) = &record.space_id {
        json["space"] = json!(space);
    }
    json
}

/// `plans/0193…  v2 pending  {"name":"Legs"}` (`  [space 0195…]` before the document for a
/// record of a space)
pub fn record_line(record: &Record) -> String {
    let space = record
        .space_id
        .as_ref()
        .map_or_else(String::new, |s| format!("  [space {s}]"));
    format!(
        "{}/{}  v{} {}{space}  {}",
        record.collection,
        record.id,
        record.version,
        record_state(record.state),
        record.document
    )
}

pub fn user_json(user: &User) -> Value {
    json!({ "id": user.id, "email": user.email, "createdAt": user.created_at })
}

pub fn report_json(report: &SyncReport) -> Value {
    json!({
        "pushed": report.pushed,
        "applied": report.applied,
        "duplicates": report.duplicates,
        "conflicts": report.conflicts,
        "rejected": report.rejected,
        "pulled": report.pulled,
        "durationMs": report.duration_ms,
        "fullRepull": report.full_repull,
        "parked": report
            .parked
            .iter()
            .map(|p| json!({ "collection": p.collection, "id": p.id }))
            .collect::<Vec<_>>(),
        "outcomes": report.outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
    })
}

fn outcome_json(o: &PushOutcome) -> Value {
    let outcome = match o.kind {
        OutcomeKind::Applied => "applied",
        OutcomeKind::Duplicate => "duplicate",
        OutcomeKind::ConflictSettled => "conflictSettled",
        OutcomeKind::ConflictParked => "conflictParked",
        OutcomeKind::Rejected => "rejected",
        OutcomeKind::WaitsForParent => "waitsForParent",
        OutcomeKind::WaitsForGroup => "waitsForGroup",
    };
    json!({
        "opId": o.op_id,
        "collection": o.collection,
        "id": o.id,
        "outcome": outcome,
        "reason": o.reason,
    })
}

pub fn report_line(report: &SyncReport) -> String {
    format!(
        "pushed {} (applied {}, duplicates {}, conflicts {}, rejected {}), pulled {} in {} ms",
        report.pushed,
        report.applied,
        report.duplicates,
        report.conflicts,
        report.rejected,
        report.pulled,
        report.duration_ms
    )
}

pub fn phase(phase: SyncPhase) -> &'static str {
    match phase {
        SyncPhase::Idle => "idle",
        SyncPhase::Pushing => "pushing",
        SyncPhase::Pulling => "pulling",
        SyncPhase::Offline => "offline",
        SyncPhase::Paused => "paused",
        SyncPhase::SignedOut => "signed_out",
        SyncPhase::Error => "error",
    }
}

pub fn status_json(status: &SyncStatus) -> Value {
    json!({
        "phase": phase(status.phase),
        "pending": status.pending,
        "conflicts": status.conflicts,
        "rejected": status.rejected,
        "lastSyncedAt": status.last_synced_at.map(timestamp),
        "lastError": status.last_error,
        "pulled": status.pulled,
        "remaining": status.remaining,
        "realtime": status.realtime,
        "lastRun": last_run_json(status),
    })
}

/// How the last run went, kept across processes: `{"at", "outcome": "ok"|"failed", "error":
/// {"code", "message"}|null}`, or null before any run.
fn last_run_json(status: &SyncStatus) -> Value {
    let Some(at) = status.last_run_at else {
        return Value::Null;
    };
    let error = status.last_failure.map(|kind| {
        json!({
            "code": crate::error::sync_code(kind),
            "message": status.last_error,
        })
    });
    json!({
        "at": timestamp(at),
        "outcome": if error.is_some() { "failed" } else { "ok" },
        "error": error,
    })
}

/// `idle · 2 pending · 1 conflict · 0 rejected · last sync 2026-…`
pub fn status_line(status: &SyncStatus) -> String {
    let mut line = format!(
        "{} · {} pending · {} conflicts · {} rejected",
        phase(status.phase),
        status.pending,
        status.conflicts,
        status.rejected
    );
    if status.realtime {
        line += " · realtime";
    }
    if status.remaining > 0 {
        line += &format!(" · pulled {}, {} to go", status.pulled, status.remaining);
    }
    if let Some(at) = status.last_synced_at {
        line += &format!(" · last sync {}", timestamp(at));
    }
    match (&status.last_error, status.last_failure) {
        (Some(error), Some(kind)) => {
            line += &format!(" · error ({}): {error}", crate::error::sync_code(kind));
        }
        (Some(error), None) => line += &format!(" · error: {error}"),
        (None, _) => {}
    }
    if let (Some(_), Some(at)) = (status.last_failure, status.last_run_at) {
        line += &format!(" · last run failed {}", timestamp(at));
    }
    line
}

fn reason(reason: ConflictReason) -> &'static str {
    match reason {
        ConflictReason::BothChanged => "both_changed",
        ConflictReason::LocalEditServerDelete => "local_edit_server_delete",
        ConflictReason::LocalDeleteServerEdit => "local_delete_server_edit",
        ConflictReason::Manual => "manual",
        ConflictReason::UniqueViolation => "unique_violation",
    }
}

pub fn conflict_json(conflict: &Conflict) -> Value {
    let mut value = json!({
        "collection": conflict.collection,
        "id": conflict.id,
        "reason": reason(conflict.reason),
        "fields": conflict.fields,
        "local": optional_document(conflict.local_document.as_deref()),
        "server": optional_document(conflict.server_document.as_deref()),
        "base": optional_document(conflict.base_document.as_deref()),
        "serverVersion": conflict.server_version,
    });
    // Only a unique_violation conflict names the record holding the key.
    if let Some(existing) = &conflict.existing_id {
        value["existingId"] = json!(existing);
    }
    value
}

/// The conflict's header, then one line per contested field with both sides.
pub fn conflict_lines(conflict: &Conflict) -> String {
    let local = optional_document(conflict.local_document.as_deref());
    let server = optional_document(conflict.server_document.as_deref());
    let mut text = format!(
        "{}/{}  {} (server v{})",
        conflict.collection,
        conflict.id,
        reason(conflict.reason),
        conflict.server_version
    );
    if let Some(existing) = &conflict.existing_id {
        text += &format!("\n  key held by: {}/{existing}", conflict.collection);
    }
    if local.is_null() || server.is_null() {
        let side = |v: &Value| {
            if v.is_null() {
                "deleted".to_string()
            } else {
                v.to_string()
            }
        };
        text += &format!("\n  mine:   {}\n  server: {}", side(&local), side(&server));
        return text;
    }
    for field in &conflict.fields {
        let show = |doc: &Value| {
            doc.get(field)
                .map_or_else(|| "(absent)".to_string(), Value::to_string)
        };
        text += &format!(
            "\n  {field}: mine {}  |  server {}",
            show(&local),
            show(&server)
        );
    }
    text
}

fn kind(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Upsert => "upsert",
        ChangeKind::Delete => "delete",
    }
}

pub fn rejected_json(change: &RejectedChange) -> Value {
    let mut json = json!({
        "opId": change.op_id,
        "collection": change.collection,
        "id": change.id,
        "kind": kind(change.kind),
        "reason": change.reason_code,
        "doc": optional_document(change.document.as_deref()),
        "createdAt": timestamp(change.created_at),
    });
    if let Some(space) = &change.space_id {
        json["space"] = json!(space);
    }
    json
}

pub fn rejected_line(change: &RejectedChange) -> String {
    format!(
        "{}  {} {}/{}  {}",
        change.op_id,
        kind(change.kind),
        change.collection,
        change.id,
        change.reason_code
    )
}

fn outbox_state(state: OutboxState) -> &'static str {
    match state {
        OutboxState::Pending => "pending",
        OutboxState::Inflight => "inflight",
        OutboxState::Rejected => "rejected",
    }
}

pub fn outbox_json(entry: &OutboxEntry) -> Value {
    json!({
        "opId": entry.op_id,
        "collection": entry.collection,
        "id": entry.id,
        "kind": kind(entry.kind),
        "baseVersion": entry.base_version,
        "doc": optional_document(entry.document.as_deref()),
        "attempts": entry.attempts,
        "state": outbox_state(entry.state),
        "lastError": entry.last_error,
        "createdAt": timestamp(entry.created_at),
    })
}

pub fn outbox_line(entry: &OutboxEntry) -> String {
    let base = entry
        .base_version
        .map_or_else(|| "new".to_string(), |v| format!("from v{v}"));
    let mut line = format!(
        "{}  {} {}/{} ({base}) {}",
        entry.op_id,
        kind(entry.kind),
        entry.collection,
        entry.id,
        outbox_state(entry.state)
    );
    if entry.attempts > 0 {
        line += &format!(", {} attempts", entry.attempts);
    }
    if let Some(error) = &entry.last_error {
        line += &format!(": {error}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = UNIX_EPOCH + Duration::from_micros(1_795_312_228_123_456);
        assert_eq!(timestamp(at), "2026-11-22T01:50:28.123Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_795_312_228_100);
        assert_eq!(timestamp(at), "2026-11-22T01:50:28.100Z");
    }

    #[test]
    fn a_conflict_shows_both_sides_of_each_contested_field() {
        let conflict = Conflict {
            collection: "plans".into(),
            id: "p1".into(),
            reason: ConflictReason::BothChanged,
            fields: vec!["name".into()],
            local_document: Some(r#"{"name":"Mine","notes":"n"}"#.into()),
            server_document: Some(r#"{"name":"Theirs","notes":"n"}"#.into()),
            base_document: Some(r#"{"name":"Base"}"#.into()),
            server_version: 3,
            existing_id: None,
        };
        assert_eq!(
            conflict_lines(&conflict),
            "plans/p1  both_changed (server v3)\n  name: mine \"Mine\"  |  server \"Theirs\""
        );
        assert_eq!(conflict_json(&conflict)["server"]["name"], "Theirs");
    }
}
