//! The attachments table, what the store names (referenced, pinned, upload work), push gating
//! and the dead letters of a permanent upload failure, on a real engine and store.

use serde_json::{json, Value};
use tandem_protocol::{MutationResult, ValidationReason};
use tempfile::TempDir;

use super::*;
use crate::engine::{now_ms, Engine, WriteOp};
use crate::outbox::{self, EntryState};
use crate::records::RecordState;
use crate::sync::conflict::ConflictPolicy;
use crate::sync::push;

const SCHEMA: &str = r#"{"version": 1, "collections": {
  "albums": {"fields": {"title": {"type": "string"}, "cover": {"type": "attachment"},
                        "back": {"type": "attachment"}}},
  "notes": {"fields": {"text": {"type": "string"}}}
}}"#;

struct Fixture {
    _dir: TempDir,
    engine: Engine,
}

fn fixture() -> Fixture {
    let dir = TempDir::new().unwrap();
    let engine = Engine::open(dir.path(), SCHEMA).unwrap();
    Fixture { _dir: dir, engine }
}

fn hash_of(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn reference(n: u8, size: u64) -> Value {
    json!({"hash": hash_of(n), "size": size, "contentType": "image/jpeg", "name": "a.jpg"})
}

fn put(collection: &str, id: &str, doc: Value) -> WriteOp {
    WriteOp::Put {
        collection: collection.into(),
        id: Some(id.into()),
        doc,
        space_id: None,
    }
}

impl Fixture {
    fn write(&self, ops: Vec<WriteOp>) {
        self.engine.write(ops).unwrap();
    }

    /// Attaches the blob `n` locally: its row (on disk, not uploaded) and the record's field.
    fn attach(&self, id: &str, field: &str, n: u8) {
        let hash = hash_of(n);
        self.engine
            .write_reporting_with(
                vec![WriteOp::Patch {
                    collection: "albums".into(),
                    id: id.into(),
                    patch: json!({ field: reference(n, 10) }),
                }],
                |tx| insert_local(tx, &hash, 10, "image/jpeg", now_ms()),
            )
            .unwrap();
    }

    fn read<T>(&self, f: impl FnOnce(&Connection, &Schema) -> Result<T>) -> T {
        let schema = self.engine.schema().clone();
        self.engine.store().read(|c| f(c, &schema)).unwrap()
    }

    fn row(&self, n: u8) -> Option<AttachmentRow> {
        self.read(|c, _| get(c, &hash_of(n)))
    }

    /// Takes a push batch with the run's gate.
    fn take(&self) -> Vec<OutboxEntry> {
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| {
                let gate = UploadGate::load(tx)?;
                outbox::take_batch(tx, 100, |e| Ok(gate.waits(&schema, e)))
            })
            .unwrap()
    }

    fn applied(&self, batch: &[OutboxEntry]) {
        let schema = self.engine.schema().clone();
        let results: Vec<MutationResult> = batch
            .iter()
            .map(|e| MutationResult::applied(&e.op_id, e.base_version.unwrap_or(0) + 1))
            .collect();
        self.engine
            .store()
            .write(|tx| {
                push::apply_results(
                    tx,
                    &schema,
                    batch,
                    &results,
                    ConflictPolicy::Merge,
                    now_ms(),
                )
            })
            .unwrap();
    }

    fn upload_done(&self, n: u8) {
        self.engine
            .store()
            .write(|tx| mark_uploaded(tx, &hash_of(n)))
            .unwrap();
    }
}

fn ids(batch: &[OutboxEntry]) -> Vec<&str> {
    batch.iter().map(|e| e.entity_id.as_str()).collect()
}

#[test]
fn the_table_keeps_rows_and_their_states() {
    let f = fixture();
    let h = hash_of(1);
    f.engine
        .store()
        .write(|tx| insert_local(tx, &h, 10, "image/png", 5))
        .unwrap();
    let row = f.row(1).unwrap();
    assert_eq!(
        (row.size, row.on_disk, row.uploaded, row.last_used_ms),
        (10, true, false, 5)
    );
    assert_eq!(row.state(), AttachmentState::Local);
    f.engine
        .store()
        .write(|tx| mark_failed(tx, &h, AttachmentFailure::TooLarge, Some("over 100 MiB")))
        .unwrap();
    let row = f.row(1).unwrap();
    assert_eq!(
        row.state(),
        AttachmentState::Failed {
            reason: AttachmentFailure::TooLarge,
            detail: Some("over 100 MiB".into())
        }
    );
    // Attaching again forgets the failure (a new attempt).
    f.engine
        .store()
        .write(|tx| insert_local(tx, &h, 10, "image/png", 11))
        .unwrap();
    assert_eq!(f.row(1).unwrap().state(), AttachmentState::Local);
    f.upload_done(1);
    assert_eq!(f.row(1).unwrap().state(), AttachmentState::Uploaded);
    for failure in [
        AttachmentFailure::TooLarge,
        AttachmentFailure::QuotaExceeded,
        AttachmentFailure::HashMismatch,
        AttachmentFailure::FileMissing,
    ] {
        assert_eq!(AttachmentFailure::parse(failure.code()), failure);
    }
    assert_eq!(
        AttachmentFailure::FileMissing.dead_letter_reason(),
        "attachment_missing"
    );
}

#[test]
fn referenced_and_pinned_follow_records_outbox_and_conflicts() {
    let f = fixture();
    f.write(vec![put("albums", "a", json!({"title": "x"}))]);
    f.attach("a", "cover", 1);
    f.attach("a", "back", 2);
    let all = |f: &Fixture| f.read(referenced);
    let pins = |f: &Fixture| f.read(pinned);
    assert_eq!(all(&f), [hash_of(1), hash_of(2)].into());
    assert_eq!(pins(&f), [hash_of(1), hash_of(2)].into());
    // Synced and uploaded: still referenced (the record names them), no longer pinned.
    let batch = f.take();
    assert!(batch.is_empty(), "waits for the uploads");
    f.upload_done(1);
    f.upload_done(2);
    let batch = f.take();
    assert_eq!(ids(&batch), ["a"]);
    f.applied(&batch);
    assert_eq!(all(&f), [hash_of(1), hash_of(2)].into());
    assert!(pins(&f).is_empty());
    // Replacing the cover: the old one is still the server's document's (server_doc) until the
    // change lands; the unsent change (a whole document) pins both it and the back.
    f.attach("a", "cover", 3);
    assert_eq!(all(&f), [hash_of(1), hash_of(2), hash_of(3)].into());
    assert_eq!(pins(&f), [hash_of(2), hash_of(3)].into());
    f.upload_done(3);
    let batch = f.take();
    f.applied(&batch);
    assert_eq!(all(&f), [hash_of(2), hash_of(3)].into());
    // A value that is not a reference names nothing; other collections name nothing.
    f.write(vec![put("notes", "n", json!({"text": hash_of(9)}))]);
    assert_eq!(all(&f), [hash_of(2), hash_of(3)].into());
}

#[test]
fn upload_work_and_pending_totals_are_the_unsent_changes_attachments() {
    let f = fixture();
    f.write(vec![
        put("albums", "a", json!({})),
        put("albums", "b", json!({})),
    ]);
    let batch = f.take();
    f.applied(&batch);
    assert!(f.read(upload_work).is_empty());
    f.attach("a", "cover", 1);
    f.attach("b", "cover", 2);
    f.attach("b", "back", 1);
    // The order is the rows' last use, which two attaches in one millisecond share: compare
    // the set.
    let mut work: Vec<String> = f.read(upload_work).into_iter().map(|r| r.hash).collect();
    work.sort();
    assert_eq!(work, [hash_of(1), hash_of(2)]);
    assert_eq!(f.read(pending_totals), (2, 20));
    f.upload_done(1);
    assert_eq!(f.read(pending_totals), (1, 10));
    // A row no unsent change names is no work (its record's change was reverted, say).
    f.engine
        .store()
        .write(|tx| insert_local(tx, &hash_of(7), 70, "text/plain", 0))
        .unwrap();
    assert_eq!(f.read(pending_totals), (1, 10));
}

#[test]
fn a_change_waits_for_its_uploads_with_its_group_and_the_rest_goes() {
    let f = fixture();
    f.write(vec![put("albums", "a", json!({"title": "a"}))]);
    f.write(vec![put("albums", "b", json!({"title": "b"}))]);
    f.applied(&f.take());
    f.attach("a", "cover", 1);
    // A batch of two: one names the blob not uploaded, so both wait.
    f.write(vec![
        WriteOp::Patch {
            collection: "albums".into(),
            id: "b".into(),
            patch: json!({"title": "b2"}),
        },
        put("notes", "n1", json!({"text": "grouped"})),
    ]);
    f.write(vec![WriteOp::Patch {
        collection: "albums".into(),
        id: "a".into(),
        patch: json!({"title": "later"}),
    }]);
    f.write(vec![put("notes", "n2", json!({"text": "alone"}))]);
    let batch = f.take();
    assert_eq!(ids(&batch), ["b", "n1", "n2"]);
    f.applied(&batch);
    // The record's later edit folded into its waiting entry: it still waits.
    let waiting: Vec<_> = f
        .engine
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|e| e.state == EntryState::Pending)
        .map(|e| e.entity_id)
        .collect();
    assert_eq!(waiting, ["a"]);
    f.upload_done(1);
    assert_eq!(ids(&f.take()), ["a"]);
}

#[test]
fn a_grouped_change_naming_a_blob_holds_its_whole_group() {
    let f = fixture();
    f.write(vec![put("albums", "a", json!({}))]);
    f.applied(&f.take());
    let h = hash_of(4);
    f.engine
        .write_reporting_with(
            vec![
                WriteOp::Patch {
                    collection: "albums".into(),
                    id: "a".into(),
                    patch: json!({"cover": reference(4, 10)}),
                },
                put("notes", "n", json!({"text": "with the photo"})),
            ],
            |tx| insert_local(tx, &h, 10, "image/jpeg", now_ms()),
        )
        .unwrap();
    assert!(f.take().is_empty());
    f.upload_done(4);
    assert_eq!(ids(&f.take()), ["a", "n"]);
}

#[test]
fn a_permanent_failure_makes_the_changes_naming_it_dead_letters() {
    let f = fixture();
    f.write(vec![put("albums", "a", json!({}))]);
    f.write(vec![put("albums", "b", json!({}))]);
    f.applied(&f.take());
    f.attach("a", "cover", 1);
    f.attach("b", "back", 1);
    f.write(vec![put("notes", "n", json!({"text": "other"}))]);
    let schema = f.engine.schema().clone();
    let (changed, dead) = f
        .engine
        .store()
        .write(|tx| {
            fail_upload(
                tx,
                &schema,
                &hash_of(1),
                AttachmentFailure::TooLarge,
                Some("limit 100 MiB"),
                now_ms(),
            )
        })
        .unwrap();
    assert_eq!(dead, 2);
    assert_eq!(changed, ["albums".to_string()].into());
    let rejected = f.engine.store().read(outbox::rejected).unwrap();
    assert_eq!(
        rejected
            .iter()
            .map(|e| (e.entity_id.as_str(), e.last_error.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("a", Some("attachment_too_large")),
            ("b", Some("attachment_too_large"))
        ]
    );
    let state = |id| {
        f.engine
            .store()
            .read(|c| crate::records::load(c, "albums", id))
            .unwrap()
            .unwrap()
            .state
    };
    assert_eq!(state("a"), RecordState::Rejected);
    // The other change goes; nothing waits for the failed blob any more.
    assert_eq!(ids(&f.take()), ["n"]);
    assert!(f.read(upload_work).is_empty());
    // The file stays pinned while its dead letters are kept.
    assert!(f.read(pinned).contains(&hash_of(1)));
    // A change written after the failure is found by the next run's phase.
    f.write(vec![put("albums", "c", json!({}))]);
    f.attach("c", "cover", 5);
    f.engine
        .store()
        .write(|tx| mark_failed(tx, &hash_of(5), AttachmentFailure::QuotaExceeded, None))
        .unwrap();
    let failed: Vec<String> = f
        .read(failed_but_named)
        .into_iter()
        .map(|r| r.hash)
        .collect();
    assert_eq!(failed, [hash_of(5)]);
}

#[test]
fn check_target_refuses_a_missing_record_and_a_field_of_another_type() {
    let f = fixture();
    f.write(vec![put("albums", "a", json!({"title": "x"}))]);
    let check = |id: &str, field: &str| {
        let schema = f.engine.schema().clone();
        f.engine
            .store()
            .read(|c| check_target(c, &schema, "albums", id, field))
    };
    check("a", "cover").unwrap();
    assert!(matches!(check("zz", "cover"), Err(Error::NotFound { .. })));
    match check("a", "title") {
        Err(Error::Validation(e)) => {
            assert_eq!(e.field.as_deref(), Some("title"));
            assert!(matches!(e.reason, ValidationReason::WrongType { .. }));
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert!(matches!(
        check("a", "nope"),
        Err(Error::Validation(e)) if e.reason == ValidationReason::UnknownField
    ));
}

#[test]
fn collecting_skips_the_record_scan_only_when_there_is_nothing_to_collect() {
    let f = fixture();
    f.write(vec![put("albums", "a", json!({"title": "A"}))]);
    // No row and no cache directory: nothing to collect (and no scan of the records).
    assert_eq!(
        super::cache::collect(&f.engine).unwrap(),
        super::cache::Collected::default()
    );
    // A file no row accounts for (a crash between a rename and its row) is still found and
    // removed: an entry in the directory means a scan.
    let dir = f.engine.files().dir().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(hash_of(9)), b"stray").unwrap();
    let collected = super::cache::collect(&f.engine).unwrap();
    assert_eq!(collected.files, 1);
    assert!(!dir.join(hash_of(9)).exists());
}
