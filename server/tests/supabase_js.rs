//! tandem-server's own `/auth/v1` driven with the requests a supabase-js client (auth-js v2)
//! makes and checked with the assertions it makes on the answers: sign-up, the password and
//! refresh grants, the user, logout with each scope, errors (auth-js reads the string `code` of an
//! answer whose `X-Supabase-Api-Version` is 2024-01-01 or later, else `error_code`, and the
//! message from `msg`, `message`, `error_description` or `error`), settings and health. Errors
//! are asked for both ways: with the API version header, as supabase-js since 2024, and without. The same story runs against a real
//! GoTrue when scripts/test.sh started one (`TANDEM_TEST_GOTRUE_URL`), so the two answer alike
//! wherever the story looks; docs/protocol.md ("GoTrue compatibility") lists where they differ.

use tandem_testkit::server_suite as common;

use tandem_testkit::on_both_backends;

use common::{TestDb, TestServer};
use serde_json::{json, Value};

on_both_backends!(a_supabase_js_client_works_against_tandem_server);

/// One answer: status, JSON body, and the API version it says it speaks.
struct Answer {
    status: u16,
    body: Value,
    api_version: Option<String>,
}

/// A client sending what auth-js sends: `apikey`, `X-Client-Info`, `X-Supabase-Api-Version`,
/// and `Authorization: Bearer <anon key>` when no user is signed in.
struct AuthJs {
    http: reqwest::Client,
    base: String,
    /// Whether requests carry `X-Supabase-Api-Version: 2024-01-01` (supabase-js since 2024).
    versioned: bool,
}

const ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.anon";

impl AuthJs {
    async fn request(
        &self,
        method: &str,
        path: &str,
        jwt: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("apikey", ANON_KEY)
            .header("X-Client-Info", "supabase-js-node/2.49.0")
            .bearer_auth(jwt.unwrap_or(ANON_KEY));
        if self.versioned {
            request = request.header("X-Supabase-Api-Version", "2024-01-01");
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the request failed")).await
    }

    /// `supabase.auth.signUp({email, password})`.
    async fn sign_up(&self, email: &str, password: &str) -> Answer {
        let body = json!({"email": email, "password": password, "data": {},
                          "gotrue_meta_security": {"captcha_token": null},
                          "code_challenge": null, "code_challenge_method": null});
        self.request("POST", "/signup", None, Some(body)).await
    }

    /// `supabase.auth.signInWithPassword({email, password})`.
    async fn sign_in(&self, email: &str, password: &str) -> Answer {
        let body = json!({"email": email, "password": password,
                          "gotrue_meta_security": {"captcha_token": null}});
        self.request("POST", "/token?grant_type=password", None, Some(body))
            .await
    }

    /// `supabase.auth.refreshSession()`.
    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.request(
            "POST",
            "/token?grant_type=refresh_token",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }

    /// `supabase.auth.signOut({scope})`.
    async fn sign_out(&self, jwt: &str, scope: &str) -> Answer {
        self.request("POST", &format!("/logout?scope={scope}"), Some(jwt), None)
            .await
    }

    async fn user(&self, jwt: Option<&str>) -> Answer {
        match jwt {
            Some(jwt) => self.request("GET", "/user", Some(jwt), None).await,
            None => {
                // Without a session auth-js sends no Authorization at all.
                let mut request = self
                    .http
                    .get(format!("{}/user", self.base))
                    .header("apikey", ANON_KEY);
                if self.versioned {
                    request = request.header("X-Supabase-Api-Version", "2024-01-01");
                }
                answer(request.send().await.unwrap()).await
            }
        }
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let api_version = response
        .headers()
        .get("x-supabase-api-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        body,
        api_version,
    }
}

/// What auth-js's `_sessionResponse` and `isAuthError` look at in a session answer.
fn assert_session(answer: &Answer, email: &str) -> (String, String) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let s = &answer.body;
    assert!(
        s["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{s}"
    );
    assert!(
        s["refresh_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{s}"
    );
    assert_eq!(s["token_type"], "bearer", "{s}");
    assert!(s["expires_in"].as_u64().is_some_and(|n| n > 0), "{s}");
    assert!(s["expires_at"].as_i64().is_some(), "{s}");
    assert_user(&s["user"], email);
    (
        s["access_token"].as_str().unwrap().to_string(),
        s["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The user object's fields an app reads through supabase-js.
fn assert_user(user: &Value, email: &str) {
    assert!(
        user["id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
        "{user}"
    );
    assert_eq!(user["email"], email, "{user}");
    assert_eq!(user["aud"], "authenticated", "{user}");
    assert_eq!(user["role"], "authenticated", "{user}");
    assert_eq!(user["app_metadata"]["provider"], "email", "{user}");
    assert!(user["user_metadata"].is_object(), "{user}");
    assert!(user["identities"].is_array(), "{user}");
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    assert!(user["created_at"].is_string(), "{user}");
    assert!(user["updated_at"].is_string(), "{user}");
    assert_eq!(user["is_anonymous"], false, "{user}");
}

/// An error as auth-js's `handleError` builds its `AuthApiError`: the code is the body's string
/// `code` when the answer's API version is 2024-01-01 or later, else its `error_code`; the
/// message `msg`, `message`, `error_description` or `error`; the status the answer's.
fn assert_error(answer: &Answer, status: Option<u16>, error_code: &str) {
    if let Some(status) = status {
        assert_eq!(answer.status, status, "{}", answer.body);
    } else {
        assert!(answer.status >= 400, "{}", answer.body);
    }
    let body = &answer.body;
    let versioned = answer
        .api_version
        .as_deref()
        .is_some_and(|v| v >= "2024-01-01");
    let code = if versioned && body["code"].is_string() {
        &body["code"]
    } else {
        &body["error_code"]
    };
    assert_eq!(code, error_code, "{body}");
    let message = ["msg", "message", "error_description", "error"]
        .iter()
        .find_map(|k| body[k].as_str());
    assert!(message.is_some_and(|m| !m.is_empty()), "{body}");
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `token` with its claims edited by `edit` and a signature that is not the issuer's.
fn forge(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = claims(token);
    edit(&mut claims);
    let mut parts = token.split('.');
    let header = parts.next().unwrap();
    let signature = parts.nth(1).unwrap();
    let forged: String = signature
        .chars()
        .rev()
        .collect::<String>()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "A");
    format!(
        "{header}.{}.{forged}",
        engine.encode(serde_json::to_vec(&claims).unwrap())
    )
}

/// The story, against the auth base `base` (`{server}/auth/v1`, or GoTrue's root), with or
/// without the API version header; with the issuer's HS256 `secret` when known (for an expired
/// token).
async fn story(base: &str, versioned: bool, secret: Option<&str>) {
    let js = AuthJs {
        http: reqwest::Client::new(),
        base: base.trim_end_matches('/').to_string(),
        versioned,
    };
    let email = tandem_testkit::fixtures::email();
    let password = "secret1";

    // signUp: a session (email confirmation off), the user's fields.
    let (access, refresh) = assert_session(&js.sign_up(&email, password).await, &email);
    let token = claims(&access);
    for claim in [
        "sub",
        "aud",
        "exp",
        "iat",
        "email",
        "role",
        "aal",
        "amr",
        "session_id",
        "is_anonymous",
    ] {
        assert!(
            !token[claim].is_null(),
            "the access token has {claim}: {token}"
        );
    }
    assert_eq!(token["aal"], "aal1");
    assert_eq!(token["amr"][0]["method"], "password");
    // signUp again: user_already_exists; a short password: weak_password with its reasons.
    assert_error(
        &js.sign_up(&email, password).await,
        Some(422),
        "user_already_exists",
    );
    let weak = js
        .sign_up(&tandem_testkit::fixtures::email(), "12345")
        .await;
    assert_error(&weak, Some(422), "weak_password");
    assert_eq!(weak.body["weak_password"]["reasons"], json!(["length"]));
    // An email that is none: 400 validation_failed.
    assert_error(
        &js.sign_up("not-an-email", password).await,
        Some(400),
        "validation_failed",
    );

    // signInWithPassword.
    let (other_access, other_refresh) = assert_session(&js.sign_in(&email, password).await, &email);
    assert_error(
        &js.sign_in(&email, "wrong-password").await,
        Some(400),
        "invalid_credentials",
    );
    // getUser.
    let user = js.user(Some(&access)).await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_user(&user.body, &email);
    assert_error(&js.user(None).await, Some(401), "no_authorization");
    assert_error(&js.user(Some("not.a.jwt")).await, Some(403), "bad_jwt");
    assert_error(
        &js.sign_out("not.a.jwt", "local").await,
        Some(403),
        "bad_jwt",
    );
    // A token whose signature is not the issuer's, and one that has expired.
    let forged = forge(&access, |_| {});
    assert_error(&js.user(Some(&forged)).await, Some(403), "bad_jwt");
    assert_error(&js.sign_out(&forged, "local").await, Some(403), "bad_jwt");
    if let Some(secret) = secret {
        let mut expired = claims(&access);
        expired["exp"] = json!(expired["iat"].as_i64().unwrap() - 60);
        let expired = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &expired,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        assert_error(&js.user(Some(&expired)).await, Some(403), "bad_jwt");
        assert_error(&js.sign_out(&expired, "local").await, Some(403), "bad_jwt");
    }
    // refreshSession: a new session of the same sign-in; an unknown token (well-formed: GoTrue
    // answers `validation_failed` to a malformed one) is refused.
    let (refreshed, _) = assert_session(&js.refresh(&refresh).await, &email);
    assert_eq!(claims(&refreshed)["session_id"], token["session_id"]);
    assert_error(
        &js.refresh("zzzzzzzzzzzz").await,
        Some(400),
        "refresh_token_not_found",
    );
    // A body that is no JSON.
    let bad = js
        .http
        .post(format!("{}/token?grant_type=password", js.base))
        .header("content-type", "application/json")
        .body("nojson")
        .send()
        .await
        .unwrap();
    assert_error(&answer(bad).await, Some(400), "bad_json");

    // signOut({scope: 'local'}): this sign-in only; the other one still refreshes. The
    // signed-out session's access token is refused: 403 session_not_found.
    assert_eq!(js.sign_out(&other_access, "local").await.status, 204);
    assert_error(
        &js.user(Some(&other_access)).await,
        Some(403),
        "session_not_found",
    );
    assert_error(
        &js.sign_out(&other_access, "local").await,
        Some(403),
        "session_not_found",
    );
    assert_error(
        &js.refresh(&other_refresh).await,
        Some(400),
        "refresh_token_not_found",
    );
    let (third_access, third_refresh) = assert_session(&js.sign_in(&email, password).await, &email);
    let (fourth_access, fourth_refresh) =
        assert_session(&js.sign_in(&email, password).await, &email);
    // signOut({scope: 'others'}): every other sign-in.
    assert_eq!(js.sign_out(&third_access, "others").await.status, 204);
    assert_error(
        &js.refresh(&fourth_refresh).await,
        Some(400),
        "refresh_token_not_found",
    );
    assert_error(
        &js.user(Some(&fourth_access)).await,
        Some(403),
        "session_not_found",
    );
    let third_user = js.user(Some(&third_access)).await;
    assert_eq!(third_user.status, 200, "{}", third_user.body);
    let (third_access, _) = assert_session(&js.refresh(&third_refresh).await, &email);
    // An unknown scope is refused.
    assert_error(
        &js.sign_out(&third_access, "bogus").await,
        Some(400),
        "validation_failed",
    );
    // signOut() (auth-js's default scope is global): every sign-in.
    let (fifth_access, fifth_refresh) = assert_session(&js.sign_in(&email, password).await, &email);
    assert_eq!(js.sign_out(&fifth_access, "global").await.status, 204);
    assert_error(
        &js.refresh(&fifth_refresh).await,
        Some(400),
        "refresh_token_not_found",
    );
    for access in [&fifth_access, &third_access] {
        assert_error(&js.user(Some(access)).await, Some(403), "session_not_found");
        assert_error(
            &js.sign_out(access, "global").await,
            Some(403),
            "session_not_found",
        );
    }

    // getSettings and the health check.
    let settings = js.request("GET", "/settings", None, None).await;
    assert_eq!(settings.status, 200);
    assert_eq!(
        settings.body["external"]["email"], true,
        "{}",
        settings.body
    );
    assert_eq!(settings.body["disable_signup"], false, "{}", settings.body);
    assert_eq!(
        settings.body["mailer_autoconfirm"], true,
        "{}",
        settings.body
    );
    let health = js.request("GET", "/health", None, None).await;
    assert_eq!(health.status, 200);
    assert!(health.body["version"].is_string(), "{}", health.body);
    assert!(health.body["name"].is_string(), "{}", health.body);
}

async fn a_supabase_js_client_works_against_tandem_server(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    story(
        &format!("{}/auth/v1", server.url()),
        true,
        Some(common::SECRET),
    )
    .await;
    story(
        &format!("{}/auth/v1", server.url()),
        false,
        Some(common::SECRET),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_story_passes_against_gotrue() {
    let Ok(url) = std::env::var("TANDEM_TEST_GOTRUE_URL") else {
        eprintln!("skipped: TANDEM_TEST_GOTRUE_URL is not set (scripts/test.sh starts GoTrue)");
        return;
    };
    let secret = std::env::var("TANDEM_TEST_GOTRUE_SECRET_FILE")
        .ok()
        .map(|file| std::fs::read_to_string(file).unwrap().trim().to_string());
    story(&url, true, secret.as_deref()).await;
    story(&url, false, secret.as_deref()).await;
}
