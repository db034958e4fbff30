//! `tandem-server import COLLECTION FILE.jsonl [--prune]`: loads a public collection from JSON
//! Lines, one `{"id": "…", "doc": {…}}` per line (`"doc": null` deletes). The whole file is
//! validated first (the id rule, the collection being public, the document against the schema,
//! duplicate ids): a bad line fails the import with `line N: …` and nothing is written. Then it
//! applies in transactions of [`IMPORT_BATCH`] lines through `Storage::admin_write`, under the
//! `public` stream's lock. A document equal to the stored one changes nothing, so re-running the
//! same file is a no-op. `--prune` also deletes the collection's public records the file does
//! not name. A running server's clients are poked: PostgreSQL through NOTIFY from this process;
//! SQLite servers see the changes at their clients' next pull.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_protocol::{is_valid_id, Schema, Scope};

use crate::config::Config;
use crate::storage::{AdminWrite, Storage};

/// Lines per transaction (the admin endpoint's batch limit too).
pub const IMPORT_BATCH: usize = 1000;

/// What an import did, printed as one JSON line.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub collection: String,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    doc: Option<serde_json::Map<String, Value>>,
}

/// Runs the import against the database and schema of `config`.
pub async fn run(
    config: &Config,
    collection: &str,
    file: &Path,
    prune: bool,
) -> anyhow::Result<ImportSummary> {
    let schema_text = config.schema_text()?;
    let schema =
        Schema::from_json(&schema_text).map_err(|e| anyhow::anyhow!("invalid schema: {e}"))?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let writes = parse_lines(&schema, collection, &text).map_err(anyhow::Error::msg)?;
    let storage = Storage::open(&config.db)
        .await
        .context("cannot open the database")?;
    storage
        .index_rules(&schema)
        .await
        .context("cannot index the schema's references and unique keys")?;
    check_attachments(&storage, &schema, collection, &text).await?;
    apply(&storage, &schema, collection, writes, prune, now_ms()).await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Applies validated `writes` (and, with `prune`, deletes of the collection's other public
/// records) in transactions of [`IMPORT_BATCH`].
pub async fn apply(
    storage: &Storage,
    schema: &Schema,
    collection: &str,
    writes: Vec<AdminWrite>,
    prune: bool,
    now_ms: i64,
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary {
        collection: collection.to_string(),
        ..Default::default()
    };
    let mut all = writes;
    // The live records before: what the file names anew is created, the rest updated.
    let existing: HashSet<String> = storage
        .public_ids(collection)
        .await
        .context("cannot list the collection's public records")?
        .into_iter()
        .collect();
    if prune {
        let named: HashSet<&str> = all.iter().map(|w| w.id.as_str()).collect();
        let doomed: Vec<AdminWrite> = existing
            .iter()
            .filter(|id| !named.contains(id.as_str()))
            .cloned()
            .map(|id| AdminWrite {
                collection: collection.to_string(),
                id,
                doc: None,
            })
            .collect();
        all.extend(doomed);
    }
    for chunk in all.chunks(IMPORT_BATCH) {
        let (results, _) = storage
            .admin_write(schema, chunk.to_vec(), now_ms)
            .await
            .context("cannot write")?
            .map_err(anyhow::Error::msg)?;
        for (write, result) in chunk.iter().zip(&results) {
            match (result.changed, write.doc.is_some()) {
                (false, _) => summary.unchanged += 1,
                (true, false) => summary.deleted += 1,
                (true, true) if existing.contains(&write.id) => summary.updated += 1,
                (true, true) => summary.created += 1,
            }
        }
    }
    tracing::info!(
        collection,
        created = summary.created,
        updated = summary.updated,
        deleted = summary.deleted,
        unchanged = summary.unchanged,
        "import done"
    );
    Ok(summary)
}

/// Refuses the file when a line's document names an attachment the server does not hold
/// (`line N: attachment_missing …`, the first such line): an import never writes a reference
/// nobody could download. Upload the files first (`PUT /admin/v1/blobs/{hash}`). Run on lines
/// [`parse_lines`] accepted.
pub async fn check_attachments(
    storage: &Storage,
    schema: &Schema,
    collection: &str,
    text: &str,
) -> anyhow::Result<()> {
    let named = attachment_lines(schema, collection, text);
    if named.is_empty() {
        return Ok(());
    }
    let mut hashes: Vec<String> = named.iter().map(|(_, _, hash)| hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    let held = storage
        .complete_blobs(hashes)
        .await
        .context("cannot look up the attachments")?;
    match named.iter().find(|(_, _, hash)| !held.contains(hash)) {
        None => Ok(()),
        Some((n, field, hash)) => {
            tracing::info!(
                line = n,
                hash = crate::blobs::hash_prefix(hash),
                code = "attachment_missing",
                "import refused: an attachment the server does not hold"
            );
            anyhow::bail!(
                "line {n}: attachment_missing: {field} names blob {hash}, which the server does \
                 not hold (upload it first with PUT /admin/v1/blobs/{hash})"
            )
        }
    }
}

/// The attachments the lines' documents name: (line number, field, hash), in line order.
pub fn attachment_lines(
    schema: &Schema,
    collection: &str,
    text: &str,
) -> Vec<(usize, String, String)> {
    if !crate::push::has_attachments(schema, collection) {
        return Vec::new();
    }
    let mut named = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Ok(Line { doc: Some(doc), .. }) = serde_json::from_str::<Line>(line) else {
            continue;
        };
        for (field, hash) in crate::push::attachment_hashes_in(schema, collection, &doc) {
            named.push((i + 1, field, hash));
        }
    }
    named
}

/// Parses and validates every line; the first bad one fails with `line N: …` (1-based). Blank
/// lines are skipped.
pub fn parse_lines(
    schema: &Schema,
    collection: &str,
    text: &str,
) -> Result<Vec<AdminWrite>, String> {
    let Some(c) = schema.collection(collection) else {
        return Err(format!("the schema has no collection {collection}"));
    };
    if c.scope != Scope::Public {
        return Err(format!(
            "{collection} is not a public collection (only \"scope\": \"public\" collections are imported)"
        ));
    }
    let mut seen = HashSet::new();
    let mut writes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line)
            .map_err(|e| format!("line {n}: not a {{\"id\", \"doc\"}} object: {e}"))?;
        if !is_valid_id(&parsed.id) {
            return Err(format!(
                "line {n}: id must be 1..{} characters of [A-Za-z0-9_.:-]",
                tandem_protocol::MAX_ID_LEN
            ));
        }
        if !seen.insert(parsed.id.clone()) {
            return Err(format!("line {n}: id {} appears twice", parsed.id));
        }
        if let Some(doc) = &parsed.doc {
            c.validate_document(collection, &Value::Object(doc.clone()))
                .map_err(|e| format!("line {n}: {e}"))?;
        }
        writes.push(AdminWrite {
            collection: collection.to_string(),
            id: parsed.id,
            doc: parsed.doc,
        });
    }
    Ok(writes)
}
