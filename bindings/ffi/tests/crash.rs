//! A writer process killed with SIGKILL mid-write, again and again. After each kill the store must
//! pass `PRAGMA integrity_check`, and every write must be whole (records and outbox entries of
//! one batch all there) or absent.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tandem::{Tandem, TandemConfig, WriteOp};
use tandem_testkit::fixtures::TEST_SCHEMA as SCHEMA;

const CHILD_DIR: &str = "TANDEM_CRASH_CHILD_DIR";
const CHILD_RUN: &str = "TANDEM_CRASH_CHILD_RUN";
const ROUNDS: u64 = 15;

/// The child's body: writes batches until killed. Run only by `killed_writers_never_leave_half_a_write`.
#[test]
#[ignore = "run as the child process of killed_writers_never_leave_half_a_write"]
fn crash_child_writer() {
    let dir = std::env::var(CHILD_DIR).expect("started by the crash test");
    let run: u64 = std::env::var(CHILD_RUN).unwrap().parse().unwrap();
    let t = Tandem::open(TandemConfig::local(dir, SCHEMA)).unwrap();
    println!("ready");
    for j in 0.. {
        let k = format!("{run}x{j}");
        let mut ops: Vec<WriteOp> = (0..3)
            .map(|i| WriteOp::Put {
                collection: "plans".into(),
                id: Some(format!("{k}-{i}")),
                json: format!(r#"{{"name": "batch {k}", "notes": "{}"}}"#, "n".repeat(200)),
                space_id: None,
            })
            .collect();
        ops.push(WriteOp::Put {
            collection: "plan_days".into(),
            id: Some(format!("{k}-d")),
            json: format!(r#"{{"planId": "{k}-0", "dayIndex": {j}}}"#),
            space_id: None,
        });
        if j > 0 {
            let previous = format!("{run}x{}", j - 1);
            ops.push(WriteOp::Delete {
                collection: "plans".into(),
                id: format!("{previous}-2"),
            });
            ops.push(WriteOp::Patch {
                collection: "plans".into(),
                id: format!("{previous}-1"),
                patch_json: format!(r#"{{"notes": "patched by {k}"}}"#),
            });
        }
        t.write(ops).unwrap();
    }
}

#[test]
fn killed_writers_never_leave_half_a_write() {
    let dir = tempfile::TempDir::new().unwrap();
    let exe = std::env::current_exe().unwrap();
    for run in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_RUN, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until_ready(&mut child);
        // A random point 20–99 ms into the writes (the child writes without pause).
        std::thread::sleep(Duration::from_millis(20 + pseudo_random(run) % 80));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        check_store(dir.path(), run);
    }
}

fn wait_until_ready(child: &mut std::process::Child) {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains("ready") {
            // Keep draining in the background so the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return;
        }
    }
    panic!("the child writer never became ready");
}

fn pseudo_random(seed: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33
}

fn check_store(dir: &std::path::Path, run: u64) {
    // Opening through the engine recovers the WAL exactly as an app restart would.
    let t = Tandem::open(TandemConfig::local(dir.to_string_lossy(), SCHEMA))
        .expect("the store opens after a crash");
    let conn = rusqlite::Connection::open(dir.join("guest.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "round {run}");

    let records: BTreeMap<(String, String), String> = conn
        .prepare("SELECT collection, id, doc FROM records")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let entries: Vec<((String, String), String)> = conn
        .prepare("SELECT collection, entity_id, doc FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Nothing was ever synced: each live record has exactly one coalesced entry carrying its
    // document, and every deleted one vanished together with its entry.
    assert_eq!(
        entries.len(),
        records.len(),
        "round {run}: one entry per record"
    );
    for (key, doc) in &entries {
        assert_eq!(
            records.get(key),
            Some(doc),
            "round {run}: entry and record agree for {key:?}"
        );
    }
    assert_eq!(t.pending_count().unwrap(), entries.len() as u64);

    // Batches are whole: k-0, k-1 and k-d exist together or not at all; k-2 exists exactly until
    // batch k+1 committed.
    let batches: BTreeSet<String> = records
        .keys()
        .filter_map(|(_, id)| id.rsplit_once('-').map(|(k, _)| k.to_string()))
        .collect();
    let has = |c: &str, id: String| records.contains_key(&(c.to_string(), id));
    for k in &batches {
        assert!(
            has("plans", format!("{k}-0"))
                && has("plans", format!("{k}-1"))
                && has("plan_days", format!("{k}-d")),
            "round {run}: batch {k} is partial"
        );
        let (r, j) = k.split_once('x').unwrap();
        let next = format!("{r}x{}", j.parse::<u64>().unwrap() + 1);
        assert_eq!(
            has("plans", format!("{k}-2")),
            !batches.contains(&next),
            "round {run}: batch {next} is partial"
        );
    }
    assert!(!batches.is_empty());
    t.shutdown();
}
