//! Hostile clients: what a probe of the server found it could be pushed over or around with
//! (issue 11's server items), each tried against the real server binary.

mod common;

use common::{Server, TestDb};

on_both_backends!(
    parallel_guesses_cannot_outrun_the_sign_in_limit,
    oversized_emails_are_refused_before_they_are_remembered,
);

async fn parallel_guesses_cannot_outrun_the_sign_in_limit(db: TestDb) {
    let server = Server::start(&db, &[]);
    let c = server.client();
    c.signup("target@example.com", "password123")
        .await
        .assert_ok();
    // 39 wrong guesses and the right password last, all sent at once.
    let attempts: Vec<_> = (0..40)
        .map(|i| {
            let c = c.clone();
            let password = if i == 39 {
                "password123"
            } else {
                "wrong-guess"
            };
            tokio::spawn(async move { c.sign_in("target@example.com", password).await })
        })
        .collect();
    let mut verified = 0;
    let mut limited = 0;
    for (i, attempt) in attempts.into_iter().enumerate() {
        let reply = attempt.await.unwrap();
        match reply.status.as_u16() {
            429 => {
                reply.assert_error(429, "rate_limited");
                limited += 1;
            }
            400 => {
                reply.assert_error(400, "invalid_grant");
                verified += 1;
            }
            200 => {
                assert_eq!(i, 39, "only the right password signs in");
                verified += 1;
            }
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    assert!(verified <= 5, "{verified} attempts were verified");
    assert_eq!(verified + limited, 40);
}

async fn oversized_emails_are_refused_before_they_are_remembered(db: TestDb) {
    let server = Server::start(&db, &[]);
    let c = server.client();
    let long = format!("{}@example.com", "a".repeat(300));
    c.signup(&long, "password123")
        .await
        .assert_error(422, "validation_failed");
    c.sign_in(&long, "password123")
        .await
        .assert_error(422, "validation_failed");
    let huge = format!("{}@example.com", "a".repeat(1 << 20));
    c.sign_in(&huge, "password123")
        .await
        .assert_error(422, "validation_failed");
    // At the limit it is an ordinary email.
    let longest = format!("{}@example.com", "a".repeat(254 - "@example.com".len()));
    c.signup(&longest, "password123").await.assert_ok();
}
