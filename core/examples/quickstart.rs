//! Opens a store with `tandem_core::Client`, writes a training plan with its days, queries and
//! observes them, and shows the outbox of changes waiting for the server.
//!
//! `cargo run -p tandem-core --example quickstart [DATA_DIR]` (a temporary directory by default).

use std::sync::mpsc::channel;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tandem_core::{Client, ClientConfig, Filter, FilterOp, Order, Query, SyncOptions, WriteOp};

const SCHEMA: &str = include_str!("../../schemas/sample.json");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::TempDir::new()?;
    let data_dir = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    let client = Client::open(ClientConfig {
        data_dir: data_dir.clone(),
        schema_json: SCHEMA.to_string(),
        server: None,
        sync: SyncOptions::default(),
        secret_store: None,
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption: tandem_core::Encryption::Off,
    })?;
    println!("opened a Tandem store in {}", data_dir.display());

    let plan = client
        .write(vec![WriteOp::Put {
            collection: "plans".into(),
            id: None,
            doc: json!({"name": "Strength A", "notes": "3x5"}),
            space_id: None,
        }])?
        .remove(0);
    println!(
        "put plans/{} -> version {}, state {:?}",
        plan.id, plan.server_version, plan.state
    );

    let by_plan = Query {
        filters: vec![Filter {
            field: "planId".into(),
            op: FilterOp::Eq,
            value: json!(plan.id),
        }],
        order: vec![Order {
            field: "dayIndex".into(),
            descending: false,
        }],
        ..Query::default()
    };
    let (seen, counts) = channel();
    let seen = Mutex::new(seen);
    let subscription = client.observe(
        "plan_days",
        &by_plan,
        Box::new(move |records| {
            println!("  observer: the plan now has {} day(s)", records.len());
            let _ = seen.lock().unwrap().send(records.len());
        }),
    )?;
    counts.recv_timeout(Duration::from_secs(5))?;

    let days = (0..3)
        .map(|i| WriteOp::Put {
            collection: "plan_days".into(),
            id: None,
            doc: json!({"planId": plan.id, "dayIndex": i, "title": format!("Day {}", i + 1)}),
            space_id: None,
        })
        .collect();
    client.write(days)?;
    while counts.recv_timeout(Duration::from_secs(5))? < 3 {}

    for day in client.query("plan_days", &by_plan)? {
        println!(
            "query: plan_days/{} {}",
            day.id,
            day.doc.unwrap_or_default()
        );
    }
    match client.write(vec![WriteOp::Put {
        collection: "plan_days".into(),
        id: None,
        doc: json!({"planId": "nope", "dayIndex": 0}),
        space_id: None,
    }]) {
        Err(e) => println!("refused as expected: {e}"),
        Ok(_) => return Err("an orphan day was accepted".into()),
    }
    println!(
        "outbox: {} change(s) waiting for the server",
        client.pending_count()?
    );
    client.write(vec![WriteOp::Delete {
        collection: "plans".into(),
        id: plan.id.clone(),
    }])?;
    println!(
        "deleted the plan; its days went with it: {} left",
        client.count("plan_days", &Query::default())?
    );
    drop(subscription);
    client.close();
    Ok(())
}
