//! Replays the committed fuzz corpus of the server targets (`fuzz/corpus/server_push_body/` and
//! `fuzz/corpus/server_pull_body/`) against the real server on SQLite, on stable, so an input
//! that once made a handler fail stays fixed: every body gets an answer other than 500 (the
//! harness asserts it) and a success answer is JSON.

use tandem_testkit::server_suite as common;

use std::path::PathBuf;

use common::{Backend, TestDb, TestServer};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_fuzz_corpus_replays_without_a_500() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (token, _) = c.new_user().await;
    for (target, path) in [
        ("server_push_body", "/sync/v1/push"),
        ("server_pull_body", "/sync/v1/pull"),
    ] {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "no corpus for {target}");
        for (file, body) in inputs {
            let reply = c
                .post_raw(path, Some(&token), Some("application/json"), body)
                .await;
            if reply.status.is_success() {
                assert!(
                    !reply.body.is_null(),
                    "{}: a success that is not JSON",
                    file.display()
                );
            }
        }
    }
    server.shutdown();
}
