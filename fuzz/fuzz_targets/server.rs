//! Shared by the server targets: one tokio runtime and one server (the real axum router over a
//! SQLite file in a temporary directory, with one signed-up user), built on the first input.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Server {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = tandem_server::Config {
            db: format!("sqlite://{}", dir.path().join("fuzz.db").display()),
            jwt_secret: Some("fuzzing-secret-0123456789".into()),
            ..tandem_server::Config::default()
        };
        let (router, token) = runtime.block_on(async {
            let router = tandem_server::fuzzing::router(&config)
                .await
                .expect("the fuzzing router");
            let body = br#"{"email":"fuzz@example.com","password":"correct horse battery"}"#;
            let (status, answer) = call(&router, "/auth/v1/signup", None, body.to_vec()).await;
            assert!(status.is_success(), "sign-up failed: {status}");
            let answer: serde_json::Value =
                serde_json::from_slice(&answer).expect("a JSON session");
            let token = answer["access_token"]
                .as_str()
                .expect("an access token")
                .to_string();
            (router, token)
        });
        Server {
            runtime,
            router,
            token,
            _dir: dir,
        }
    })
}

async fn call(
    router: &axum::Router,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body)).expect("a request");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the answer's body")
        .to_bytes();
    (status, bytes.to_vec())
}

/// Posts `body` to `path` as the signed-in user. The router turns a handler panic into a 500
/// (CatchPanicLayer), and nothing else should fail on a healthy SQLite file: a 500 is a crash.
pub fn post(path: &str, body: &[u8]) {
    let server = server();
    let (status, answer) = server.runtime.block_on(call(
        &server.router,
        path,
        Some(&server.token),
        body.to_vec(),
    ));
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "{path} answered 500: {}",
        String::from_utf8_lossy(&answer)
    );
    if status.is_success() {
        serde_json::from_slice::<serde_json::Value>(&answer).expect("a success answer is JSON");
    }
}
