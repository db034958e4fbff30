//! Opens a store, writes a training plan with its days, queries and observes them, and shows the
//! outbox of changes waiting for the server.
//!
//! `cargo run -p tandem-core --example quickstart [DATA_DIR]` (a temporary directory by default).

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::{
    Filter, FilterOp, OrderBy, Query, QueryObserver, Record, Tandem, TandemConfig, WriteOp,
};

const SCHEMA: &str = include_str!("../../schemas/sample.json");

struct PrintDays(Mutex<Sender<usize>>);

impl QueryObserver for PrintDays {
    fn on_results(&self, records: Vec<Record>) {
        println!("  observer: the plan now has {} day(s)", records.len());
        let _ = self.0.lock().unwrap().send(records.len());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::TempDir::new()?;
    let data_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| temp.path().to_string_lossy().into_owned());
    let tandem = Tandem::open(TandemConfig::local(data_dir.clone(), SCHEMA))?;
    println!("opened a Tandem store in {data_dir}");

    let plan = tandem.put(
        "plans".into(),
        None,
        r#"{"name": "Strength A", "notes": "3x5"}"#.into(),
    )?;
    println!(
        "put plans/{} -> version {}, state {:?}",
        plan.id, plan.version, plan.state
    );

    let by_plan = Query {
        filters: vec![Filter {
            field: "planId".into(),
            op: FilterOp::Eq,
            value_json: format!("\"{}\"", plan.id),
        }],
        order_by: vec![OrderBy {
            field: "dayIndex".into(),
            descending: false,
        }],
        ..Query::default()
    };
    let (seen, counts) = channel();
    let subscription = tandem.observe(
        "plan_days".into(),
        by_plan.clone(),
        Arc::new(PrintDays(Mutex::new(seen))),
    )?;
    counts.recv_timeout(Duration::from_secs(5))?;

    let days = (0..3)
        .map(|i| WriteOp::Put {
            collection: "plan_days".into(),
            id: None,
            json: format!(
                r#"{{"planId": "{}", "dayIndex": {i}, "title": "Day {}"}}"#,
                plan.id,
                i + 1
            ),
        })
        .collect();
    tandem.write(days)?;
    while counts.recv_timeout(Duration::from_secs(5))? < 3 {}

    for day in tandem.query("plan_days".into(), by_plan)? {
        println!("query: plan_days/{} {}", day.id, day.document);
    }
    match tandem.put(
        "plan_days".into(),
        None,
        r#"{"planId": "nope", "dayIndex": 0}"#.into(),
    ) {
        Err(e) => println!("refused as expected: {e}"),
        Ok(_) => return Err("an orphan day was accepted".into()),
    }
    println!(
        "outbox: {} change(s) waiting for the server",
        tandem.pending_count()?
    );
    tandem.delete("plans".into(), plan.id.clone())?;
    println!(
        "deleted the plan; its days went with it: {} left",
        tandem.count("plan_days".into(), Query::default())?
    );
    subscription.cancel();
    tandem.shutdown();
    Ok(())
}
