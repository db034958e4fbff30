//! Shared by the integration tests: the training-plans schema and an engine in a temp directory.
#![allow(dead_code)]

use std::sync::Arc;

use tandem::{Tandem, TandemConfig};
use tempfile::TempDir;

pub const SCHEMA: &str = r#"{"version": 1, "collections": {
  "plans": {"fields": {"name": {"type": "string", "required": true, "maxLength": 200},
                       "notes": {"type": "string"}, "archived": {"type": "boolean"},
                       "rating": {"type": "number"}, "meta": {"type": "object"}}},
  "plan_days": {"parent": {"collection": "plans", "field": "planId"},
                "fields": {"planId": {"type": "string", "required": true},
                           "dayIndex": {"type": "integer", "required": true},
                           "exerciseIds": {"type": "array"}},
                "indexes": [["planId", "dayIndex"]]}}}"#;

pub fn config(dir: &TempDir, schema: &str) -> TandemConfig {
    TandemConfig::local(dir.path().to_string_lossy(), schema)
}

pub fn open() -> (TempDir, Arc<Tandem>) {
    let dir = TempDir::new().unwrap();
    let tandem = Tandem::open(config(&dir, SCHEMA)).unwrap();
    (dir, tandem)
}

pub fn doc(record: &tandem::Record) -> serde_json::Value {
    serde_json::from_str(&record.document).unwrap()
}
