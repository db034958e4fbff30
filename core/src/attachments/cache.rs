//! The attachment cache (docs/design/attachments.md §5 "Download, cache, collection").
//!
//! - [`evict`]: after a download or a prefetch, files are deleted least recently used first
//!   until the total on disk fits the limit (`ClientConfig::attachment_cache_bytes`), never a
//!   pinned one: not uploaded yet, or named by an unsent change or an open conflict (the server
//!   may not have it, or the user may need it to settle the change). Evicting keeps the row: the
//!   attachment is `Remote` and downloads again on demand.
//! - [`collect`]: after every sync run and at open, the rows and files of hashes nothing names
//!   (no record's document or server copy, no outbox entry, no conflict) go, and so do partial
//!   downloads of such hashes and stale temporary files. So deleting a record removes its file
//!   once the delete is synced (a revert before then still finds it).

use std::collections::{BTreeSet, HashSet};

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::download::{dir, short};
use crate::engine::Engine;
use crate::error::Result;
use crate::observe::ATTACHMENTS;

/// A file in `tmp/` older than this belongs to no attach under way (the copy of a 100 MB file
/// takes seconds): it is left over from a crash.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// What [`evict`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub files: u64,
    pub bytes: u64,
    /// The bytes on disk afterwards (over the limit only when pinned files alone pass it).
    pub remaining: u64,
}

/// One file on disk, as eviction sees it.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub hash: String,
    pub size: u64,
    pub uploaded: bool,
}

/// Which of `files` (least recently used first) to delete so that the total fits `limit`,
/// skipping the pinned ones, `keep` and anything not uploaded.
pub(crate) fn choose(
    files: &[Cached],
    limit: u64,
    pinned: &BTreeSet<String>,
    keep: Option<&str>,
) -> (Vec<String>, u64) {
    let mut total: u64 = files.iter().map(|f| f.size).sum();
    let mut chosen = Vec::new();
    for file in files {
        if total <= limit {
            break;
        }
        if !file.uploaded || pinned.contains(&file.hash) || keep == Some(file.hash.as_str()) {
            continue;
        }
        total -= file.size;
        chosen.push(file.hash.clone());
    }
    (chosen, total)
}

/// Brings the files on disk within `limit` bytes, least recently used first, never a pinned
/// file nor `keep` (the file just downloaded).
pub fn evict(engine: &Engine, limit: u64, keep: Option<&str>) -> Result<Evicted> {
    let dir = dir(engine);
    let evicted = engine.store().write(|tx| {
        let files = tx
            .prepare_cached(
                "SELECT hash, size, uploaded FROM attachments WHERE on_disk = 1
                 ORDER BY last_used_ms, hash",
            )?
            .query_map([], |r| {
                Ok(Cached {
                    hash: r.get(0)?,
                    size: r.get::<_, i64>(1)?.max(0) as u64,
                    uploaded: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let total: u64 = files.iter().map(|f| f.size).sum();
        if total <= limit {
            return Ok(Evicted {
                remaining: total,
                ..Evicted::default()
            });
        }
        let pinned = super::pinned(tx, engine.schema())?;
        let (chosen, remaining) = choose(&files, limit, &pinned, keep);
        let mut evicted = Evicted {
            remaining,
            ..Evicted::default()
        };
        for hash in &chosen {
            remove(&dir.join(hash))?;
            tx.prepare_cached("UPDATE attachments SET on_disk = 0 WHERE hash = ?1")?
                .execute([hash])?;
            evicted.files += 1;
            evicted.bytes += files.iter().find(|f| &f.hash == hash).map_or(0, |f| f.size);
        }
        Ok(evicted)
    })?;
    if evicted.files > 0 {
        tracing::debug!(
            files = evicted.files,
            bytes = evicted.bytes,
            remaining = evicted.remaining,
            limit,
            "attachments evicted from the cache"
        );
        engine.committed(BTreeSet::from([ATTACHMENTS.to_string()]));
    }
    if evicted.remaining > limit {
        tracing::info!(
            remaining = evicted.remaining,
            limit,
            "the attachment cache stays over its limit: the rest is pinned (unsent or not uploaded)"
        );
    }
    Ok(evicted)
}

/// What [`collect`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub rows: u64,
    pub files: u64,
}

/// Deletes the rows and files of hashes nothing references any more, and leftover partial and
/// temporary files. Files with a transfer under way are left alone.
pub fn collect(engine: &Engine) -> Result<Collected> {
    // Nothing to collect without a row or a file: no scan of the records (the scan reads every
    // document, so its cost grows with the store; it ran after every sync run and at every open).
    // A schema without attachment fields needs no look at the directory (as before); with them,
    // any entry of the cache directory (a file, a partial download, `tmp`) means a scan.
    let any_row = engine.store().read(|c| {
        Ok(
            c.query_row("SELECT EXISTS (SELECT 1 FROM attachments)", [], |r| {
                r.get::<_, bool>(0)
            })?,
        )
    })?;
    let dir = dir(engine);
    if !any_row && (!engine.schema().has_attachments() || is_empty_or_missing(&dir)?) {
        return Ok(Collected::default());
    }
    let active: HashSet<String> = engine.attachment_progress().active().into_iter().collect();
    let mut collected = Collected::default();
    let referenced = engine.store().write(|tx| {
        let referenced = super::referenced(tx, engine.schema())?;
        let known = tx
            .prepare_cached("SELECT hash FROM attachments")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for hash in known {
            if referenced.contains(&hash) || active.contains(&hash) {
                continue;
            }
            remove(&dir.join(&hash))?;
            remove(&dir.join(format!("{hash}.part")))?;
            tx.prepare_cached("DELETE FROM attachments WHERE hash = ?1")?
                .execute([&hash])?;
            collected.rows += 1;
        }
        Ok(referenced)
    })?;
    // Files no row accounts for: partial downloads of hashes nothing names, complete files left by
    // a crash between a rename and its row, temporary files of an attach that never finished.
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name == "tmp" {
                    collected.files += remove_stale(&entry.path())?;
                    continue;
                }
                let hash = name.strip_suffix(".part").unwrap_or(name);
                if referenced.contains(hash) || active.contains(hash) {
                    continue;
                }
                if entry.file_type()?.is_file() {
                    remove(&entry.path())?;
                    collected.files += 1;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    if collected.rows > 0 || collected.files > 0 {
        tracing::debug!(
            rows = collected.rows,
            files = collected.files,
            "unreferenced attachments collected"
        );
    }
    if collected.rows > 0 {
        engine.committed(BTreeSet::from([ATTACHMENTS.to_string()]));
    }
    Ok(collected)
}

/// Whether `dir` has no entry at all (or does not exist).
fn is_empty_or_missing(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the files of `tmp` older than [`STALE_TMP`].
fn remove_stale(tmp: &Path) -> Result<u64> {
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let modified = entry.metadata()?.modified()?;
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default();
        if age > STALE_TMP && entry.file_type()?.is_file() {
            remove(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Deletes a file; one already gone is fine.
fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %path.file_name().and_then(|n| n.to_str()).map(short).unwrap_or(""), error = %e, "deleting an attachment file failed");
            Err(e.into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{now_ms, WriteOp};
    use serde_json::json;

    const SCHEMA: &str = r#"{"version": 1, "collections": {
      "albums": {"fields": {"title": {"type": "string"}, "cover": {"type": "attachment"}}}
    }}"#;

    fn hash_of(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    /// A file of `n` on disk with its row (uploaded, last used at `used`).
    fn cached(engine: &Engine, n: u8, size: usize, used: i64) {
        let files = engine.files();
        files.ensure().unwrap();
        std::fs::write(files.path(&hash_of(n)), vec![n; size]).unwrap();
        engine
            .store()
            .write(|tx| {
                let wanted = super::super::download::Wanted {
                    hash: hash_of(n),
                    size: size as u64,
                    content_type: "image/jpeg".into(),
                };
                super::super::download::mark_on_disk(tx, &wanted, used)
            })
            .unwrap();
    }

    fn album(id: &str, n: u8) -> WriteOp {
        WriteOp::Put {
            collection: "albums".into(),
            id: Some(id.into()),
            doc: json!({"cover": {"hash": hash_of(n), "size": 10, "contentType": "image/jpeg"}}),
            space_id: None,
        }
    }

    #[test]
    fn eviction_spares_pins_and_keeps_rows_and_collection_follows_references() {
        let dir = tempfile::TempDir::new().unwrap();
        let engine = Engine::open(dir.path(), SCHEMA).unwrap();
        // Three records name 1, 2 and 3; 4 is named by nothing.
        engine
            .write(vec![album("a", 1), album("b", 2), album("c", 3)])
            .unwrap();
        let now = now_ms();
        for (n, used) in [(1, now - 40), (2, now - 30), (3, now - 20), (4, now - 10)] {
            cached(&engine, n, 100, used);
        }
        // 1, 2 and 3 have unsent changes (the puts): all pinned but 4.
        let evicted = evict(&engine, 150, None).unwrap();
        assert_eq!((evicted.files, evicted.remaining), (1, 300));
        assert!(!engine.files().has(&hash_of(4)));
        // Once sent, the least recently used go first, and a row stays (remote).
        engine
            .store()
            .write(|tx| Ok(tx.execute_batch("DELETE FROM outbox")?))
            .unwrap();
        let evicted = evict(&engine, 150, Some(&hash_of(1))).unwrap();
        assert_eq!((evicted.files, evicted.remaining), (2, 100));
        assert!(engine.files().has(&hash_of(1)), "kept");
        assert!(!engine.files().has(&hash_of(2)) && !engine.files().has(&hash_of(3)));
        let row = engine
            .store()
            .read(|c| super::super::get(c, &hash_of(2)))
            .unwrap()
            .unwrap();
        assert!(!row.on_disk && row.uploaded);

        // Collection: 4's row goes (nothing names it), and so do stray files and parts.
        let files = engine.files();
        std::fs::write(files.path(&hash_of(9)), b"stray").unwrap();
        std::fs::write(files.part_path(&hash_of(8)), b"part").unwrap();
        std::fs::write(files.part_path(&hash_of(2)), b"part of a named one").unwrap();
        let collected = collect(&engine).unwrap();
        assert_eq!(collected.rows, 1);
        assert!(engine
            .store()
            .read(|c| super::super::get(c, &hash_of(4)))
            .unwrap()
            .is_none());
        assert!(!files.path(&hash_of(9)).exists() && !files.part_path(&hash_of(8)).exists());
        assert!(
            files.part_path(&hash_of(2)).exists(),
            "a named hash keeps its partial download"
        );
        assert!(files.has(&hash_of(1)));
        // A record deleted (and its delete sent) lets its file go.
        engine
            .write(vec![WriteOp::Delete {
                collection: "albums".into(),
                id: "a".into(),
            }])
            .unwrap();
        engine
            .store()
            .write(|tx| {
                Ok(tx.execute_batch("DELETE FROM outbox; DELETE FROM records WHERE id = 'a'")?)
            })
            .unwrap();
        collect(&engine).unwrap();
        assert!(!files.has(&hash_of(1)));
        assert!(engine
            .store()
            .read(|c| super::super::get(c, &hash_of(1)))
            .unwrap()
            .is_none());
    }

    fn file(hash: &str, size: u64, uploaded: bool) -> Cached {
        Cached {
            hash: hash.to_string(),
            size,
            uploaded,
        }
    }

    #[test]
    fn names_are_shortened_by_characters() {
        assert_eq!(short(&"a".repeat(64)), "a".repeat(12));
        assert_eq!(short("é".repeat(20).as_str()), "é".repeat(12));
        assert_eq!(short("abc"), "abc");
    }

    #[test]
    fn least_recently_used_go_first_until_the_total_fits() {
        let files = [
            file("a", 40, true),
            file("b", 30, true),
            file("c", 50, true),
        ];
        let (chosen, remaining) = choose(&files, 80, &BTreeSet::new(), None);
        assert_eq!(chosen, ["a"]);
        assert_eq!(remaining, 80);
        let (chosen, remaining) = choose(&files, 79, &BTreeSet::new(), None);
        assert_eq!(chosen, ["a", "b"]);
        assert_eq!(remaining, 50);
        let (chosen, _) = choose(&files, 120, &BTreeSet::new(), None);
        assert!(chosen.is_empty());
    }

    #[test]
    fn pinned_unuploaded_and_kept_files_stay() {
        let files = [
            file("pinned", 40, true),
            file("local", 40, false),
            file("kept", 40, true),
            file("old", 40, true),
            file("new", 40, true),
        ];
        let pinned = BTreeSet::from(["pinned".to_string()]);
        let (chosen, remaining) = choose(&files, 0, &pinned, Some("kept"));
        assert_eq!(chosen, ["old", "new"]);
        assert_eq!(
            remaining, 120,
            "the pinned, local and kept files are over the limit"
        );
    }
}
