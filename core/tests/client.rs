//! `tandem_core::Client` used directly, as an embedding Rust app would. The exported API's tests
//! live in `bindings/ffi/tests`.

use serde_json::json;
use tandem_core::{Client, ClientConfig, Filter, FilterOp, Query, SyncOptions, WriteOp};
use tempfile::TempDir;

use tandem_testkit::TEST_SCHEMA as SCHEMA;

fn open(dir: &TempDir) -> Client {
    Client::open(ClientConfig {
        data_dir: dir.path().to_path_buf(),
        schema_json: SCHEMA.to_string(),
        server: None,
        sync: SyncOptions::default(),
        secret_store: None,
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption: tandem_core::Encryption::Off,
    })
    .unwrap()
}

fn put(collection: &str, id: &str, doc: serde_json::Value) -> WriteOp {
    WriteOp::Put {
        collection: collection.into(),
        id: Some(id.into()),
        doc,
        space_id: None,
    }
}

fn seed_days(client: &Client) {
    client
        .write(vec![
            put(
                "plans",
                "a",
                json!({"name": "A", "rating": 4.5, "archived": true}),
            ),
            put("plans", "b", json!({"name": "B", "rating": 3})),
            put("plans", "c", json!({"name": "C"})),
        ])
        .unwrap();
    let ops = (0..6)
        .map(|i| {
            put(
                "plan_days",
                &format!("d{i}"),
                json!({"planId": if i % 2 == 0 { "a" } else { "b" }, "dayIndex": i}),
            )
        })
        .collect();
    client.write(ops).unwrap();
}

#[test]
fn an_indexed_query_uses_its_index() {
    let dir = TempDir::new().unwrap();
    let client = open(&dir);
    seed_days(&client);
    let q = Query {
        filters: vec![Filter {
            field: "planId".into(),
            op: FilterOp::Eq,
            value: json!("a"),
        }],
        ..Default::default()
    };
    let plan = client.explain("plan_days", &q).unwrap();
    assert!(plan.contains("USING INDEX tdx_plan_days_"), "{plan}");
}
