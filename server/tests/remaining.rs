//! `remaining` stays exact across the blocks of sequence numbers the server counts rows in
//! (`seq_blocks`, 1024 per block): after creates, updates that move rows to later blocks, deletes
//! and cascades, after tombstones are purged, and after the counts are rebuilt for a database
//! from before they existed.

use tandem_testkit::server_suite as common;

use tandem_testkit::on_both_backends;

use std::time::Duration;

use common::{delete, op, upsert, Backend, TestDb, TestServer};
use serde_json::json;

on_both_backends!(remaining_is_exact_across_blocks);

async fn remaining_is_exact_across_blocks(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    write_history(&c, &t).await;
    let first_page = c.pull(&t, None, Some(1000)).await.assert_ok().clone();
    let (_, after_deletes) = c.pull_all(&t, None).await;
    write_creates(&c, &t, 2500..4000).await;
    assert_remaining_exact(&c, &t, None, 4021).await;
    assert_remaining_exact(&c, &t, Some(&after_deletes), 1500).await;
    server.shutdown();

    // Retention 0: every tombstone (100 deletes, 21 cascaded) is purged within a second or two,
    // all at once. Cursors from before the tombstones then answer 410; full pulls from null
    // started after the purge page through to the end (their early cursors lie below the purged
    // sequence but were issued after the purge), as do pulls from a cursor after the tombstones.
    let purging = TestServer::builder().db(&db).purging().in_process().start();
    let c = purging.client();
    purging.advance(Duration::from_secs(1));
    wait_for_purge(&c, &t, first_page["cursor"].as_str().unwrap()).await;
    assert_remaining_exact(&c, &t, None, 3900).await;
    assert_remaining_exact(&c, &t, Some(&after_deletes), 1500).await;
    purging.shutdown();

    // A database from before `seq_blocks`: the server rebuilds the counts when it starts.
    drop_seq_blocks(&db).await;
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    assert_first_pages_exact(&c, &t, 3900).await;
    assert_remaining_exact(&c, &t, Some(&after_deletes), 1500).await;
    // Writes after the rebuild keep them exact (p3001's row moves from block 2 to block 3).
    c.push_ok(
        &t,
        vec![upsert(
            &op(),
            "plans",
            "p3001",
            Some(1),
            json!({"name": "again"}),
        )],
    )
    .await;
    assert_first_pages_exact(&c, &t, 3900).await;
    assert_remaining_exact(&c, &t, Some(&after_deletes), 1500).await;
}

/// 2,500 plans over three blocks, 300 of them changed again (their rows leave early blocks), a
/// plan with 20 days deleted (21 tombstones by cascade), 100 plans deleted: 2,521 rows.
async fn write_history(c: &common::Client, t: &str) {
    write_creates(c, t, 0..2500).await;
    let updates = (0..300).map(|i| {
        upsert(
            &op(),
            "plans",
            &format!("p{:04}", i * 8 + 1),
            Some(1),
            json!({"name": "P2"}),
        )
    });
    c.push_ok(t, updates.collect()).await;
    let mut family = vec![upsert(&op(), "plans", "parent", None, json!({"name": "P"}))];
    family.extend((0..20).map(|d| {
        upsert(
            &op(),
            "plan_days",
            &format!("d{d}"),
            None,
            json!({"planId": "parent", "dayIndex": d}),
        )
    }));
    c.push_ok(t, family).await;
    c.push_ok(t, vec![delete(&op(), "plans", "parent", Some(1))])
        .await;
    let deletes = (0..100).map(|i| delete(&op(), "plans", &format!("p{:04}", i * 8 + 2), Some(1)));
    let results = c.push_ok(t, deletes.collect()).await;
    assert!(
        results.iter().all(|r| r["status"] == "applied"),
        "{results:?}"
    );
}

async fn write_creates(c: &common::Client, t: &str, ids: std::ops::Range<usize>) {
    let all: Vec<usize> = ids.collect();
    for chunk in all.chunks(500) {
        let creates = chunk.iter().map(|i| {
            upsert(
                &op(),
                "plans",
                &format!("p{i:04}"),
                None,
                json!({"name": "P"}),
            )
        });
        c.push_ok(t, creates.collect()).await;
    }
}

/// Pages through everything after `cursor` with several limits, checking on every page that
/// `remaining` is the number of changes the later pages then deliver.
async fn assert_remaining_exact(c: &common::Client, t: &str, cursor: Option<&str>, total: usize) {
    for limit in [1000, 333, 1024, 7] {
        let (pages, _) = c.pull_pages(t, cursor, limit).await;
        let delivered: usize = pages
            .iter()
            .map(|p| p["changes"].as_array().unwrap().len())
            .sum();
        assert_eq!(delivered, total, "limit {limit}");
        let mut left = total;
        for page in &pages {
            left -= page["changes"].as_array().unwrap().len();
            assert_eq!(page["remaining"], json!(left), "limit {limit}");
            assert_eq!(page["hasMore"], json!(left > 0), "limit {limit}");
        }
    }
}

/// The first page from null, with several limits: `remaining` is everything else.
async fn assert_first_pages_exact(c: &common::Client, t: &str, total: usize) {
    for limit in [1000, 333, 7] {
        let page = c.pull(t, None, Some(limit)).await.assert_ok().clone();
        assert_eq!(
            page["remaining"],
            json!(total - limit as usize),
            "limit {limit}"
        );
    }
}

/// Waits until `old_cursor` (from before the tombstones) answers 410: the purge has run.
async fn wait_for_purge(c: &common::Client, t: &str, old_cursor: &str) {
    for _ in 0..400 {
        if c.pull(t, Some(old_cursor), Some(1)).await.status.as_u16() == 410 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tombstones were never purged");
}

/// Drops `seq_blocks` as if the database predated it. Retried for a while: the stopped server's
/// connections may take a moment to let go of the database.
async fn drop_seq_blocks(db: &TestDb) {
    let mut last_error = String::new();
    for _ in 0..200 {
        match try_drop_seq_blocks(db).await {
            Ok(()) => return,
            Err(e) => last_error = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot drop seq_blocks: {last_error}");
}

async fn try_drop_seq_blocks(db: &TestDb) -> Result<(), String> {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").unwrap();
            let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
            conn.execute_batch("DROP TABLE seq_blocks")
                .map_err(|e| e.to_string())
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let connection = tokio::spawn(connection);
            let dropped = client
                // A database of a version before seq_blocks has no migration fingerprint
                // either (the fingerprint would skip the DDL that recreates the table).
                .batch_execute("DROP TABLE seq_blocks; DELETE FROM meta WHERE key = 'migration'")
                .await
                .map_err(|e| format!("{e:?}"));
            drop(client);
            let _ = connection.await;
            dropped
        }
    }
}
