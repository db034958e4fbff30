//! A thin client of the sync protocol for the server suites: JSON in, [`Reply`] out, plus the
//! mutation builders and an SSE poke reader.

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;

use reqwest::StatusCode;
use serde_json::{json, Value};

/// A thin HTTP client for the protocol.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

/// A response: status, headers and the JSON body (`Value::Null` when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts an error answer with `status` and `code`, JSON typed.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["error"], code, "body: {}", self.body);
        assert!(
            self.body["error_description"].is_string(),
            "body: {}",
            self.body
        );
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "content-type {content_type}"
        );
    }

    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        &self.body
    }
}

impl Client {
    /// A client of the server at `base` (`http://HOST:PORT`).
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_ne!(status.as_u16(), 500, "the server answered 500: {body}");
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POSTs `body` as JSON, with a bearer token when given.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// POSTs raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn signup(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/v1/signup",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/v1/token?grant_type=password",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "/auth/v1/token?grant_type=refresh_token",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Signs up a new random user; returns (access token, session JSON).
    pub async fn new_user(&self) -> (String, Value) {
        let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        let session = self.signup(&email, "password123").await.assert_ok().clone();
        (
            session["access_token"].as_str().unwrap().to_string(),
            session,
        )
    }

    pub async fn push(&self, token: &str, mutations: Vec<Value>) -> Reply {
        self.post(
            "/sync/v1/push",
            Some(token),
            &json!({"clientId": "client-1", "mutations": mutations}),
        )
        .await
    }

    /// Pushes and returns the results array, asserting 200.
    pub async fn push_ok(&self, token: &str, mutations: Vec<Value>) -> Vec<Value> {
        self.push(token, mutations).await.assert_ok()["results"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn pull(&self, token: &str, cursor: Option<&str>, limit: Option<i64>) -> Reply {
        let mut body = json!({"cursor": cursor});
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        self.post("/sync/v1/pull", Some(token), &body).await
    }

    /// Every page from `cursor` with `limit`, asserting 200; returns the pages and the last cursor.
    pub async fn pull_pages(
        &self,
        token: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> (Vec<Value>, String) {
        let mut cursor = cursor.map(str::to_string);
        let mut pages = Vec::new();
        for _ in 0..10_000 {
            let page = self
                .pull(token, cursor.as_deref(), Some(limit))
                .await
                .assert_ok()
                .clone();
            cursor = Some(page["cursor"].as_str().unwrap().to_string());
            let more = page["hasMore"].as_bool().unwrap();
            pages.push(page);
            if !more {
                return (pages, cursor.unwrap());
            }
        }
        panic!("pull did not end");
    }

    /// The latest change of `entity/id` in a full pull, if the server has one.
    pub async fn change_of(&self, token: &str, entity: &str, id: &str) -> Option<Value> {
        let (changes, _) = self.pull_all(token, None).await;
        changes
            .into_iter()
            .find(|c| c["entity"] == entity && c["entityId"] == id)
    }

    /// Opens the event stream of `token`'s account, asserting 200.
    pub async fn events(&self, token: &str) -> Events {
        let response = self
            .http
            .get(self.url("/sync/v1/events"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request failed");
        assert_eq!(response.status().as_u16(), 200);
        Events {
            headers: response.headers().clone(),
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// Pulls every page from `cursor`; returns the changes and the final cursor.
    pub async fn pull_all(&self, token: &str, cursor: Option<&str>) -> (Vec<Value>, String) {
        let (pages, cursor) = self.pull_pages(token, cursor, 1000).await;
        let changes = pages
            .iter()
            .flat_map(|p| p["changes"].as_array().unwrap().iter().cloned())
            .collect();
        (changes, cursor)
    }
}

/// A signed-up user of the space suites: its token, email and id.
#[derive(Clone, Debug)]
pub struct User {
    pub token: String,
    pub email: String,
    pub id: String,
}

impl Client {
    /// Sends `method path` with a JSON body (when given) and a bearer token.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// Signs up a new random user; returns its token, email and id.
    pub async fn user(&self) -> User {
        let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        self.user_with_email(&email).await
    }

    /// Signs up `email`; returns its token, email and id.
    pub async fn user_with_email(&self, email: &str) -> User {
        let session = self.signup(email, "password123").await.assert_ok().clone();
        User {
            token: session["access_token"].as_str().unwrap().to_string(),
            email: email.to_string(),
            id: session["user"]["id"].as_str().unwrap().to_string(),
        }
    }

    /// A stream-form pull: `streams` maps stream names to cursors (or null).
    pub async fn pull_streams(
        &self,
        token: &str,
        streams: Value,
        account_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Reply {
        let mut body = json!({"streams": streams});
        if let Some(seq) = account_seq {
            body["accountSeq"] = json!(seq);
        }
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        self.post("/sync/v1/pull", Some(token), &body).await
    }

    /// `POST /sync/v1/spaces` with a fresh request id.
    pub async fn create_space_reply(&self, token: &str, name: &str) -> Reply {
        self.post(
            "/sync/v1/spaces",
            Some(token),
            &json!({"name": name, "requestId": op()}),
        )
        .await
    }

    /// Creates a space, asserting 201; returns the space's JSON.
    pub async fn create_space(&self, token: &str, name: &str) -> Value {
        let reply = self.create_space_reply(token, name).await;
        assert_eq!(reply.status.as_u16(), 201, "body: {}", reply.body);
        reply.body
    }

    /// `GET /sync/v1/account`, asserting 200.
    pub async fn account(&self, token: &str) -> Value {
        self.get("/sync/v1/account", Some(token))
            .await
            .assert_ok()
            .clone()
    }

    /// `PATCH /sync/v1/spaces/{space}`.
    pub async fn rename_space(&self, token: &str, space: &str, name: &str) -> Reply {
        self.request(
            reqwest::Method::PATCH,
            &format!("/sync/v1/spaces/{space}"),
            Some(token),
            Some(&json!({"name": name})),
        )
        .await
    }

    /// `DELETE /sync/v1/spaces/{space}`.
    pub async fn delete_space(&self, token: &str, space: &str) -> Reply {
        self.request(
            reqwest::Method::DELETE,
            &format!("/sync/v1/spaces/{space}"),
            Some(token),
            None,
        )
        .await
    }

    /// `GET /sync/v1/spaces/{space}/members`.
    pub async fn members(&self, token: &str, space: &str) -> Reply {
        self.get(&format!("/sync/v1/spaces/{space}/members"), Some(token))
            .await
    }

    /// `PUT /sync/v1/spaces/{space}/members/{member}`.
    pub async fn set_role(&self, token: &str, space: &str, member: &str, role: &str) -> Reply {
        self.request(
            reqwest::Method::PUT,
            &format!("/sync/v1/spaces/{space}/members/{member}"),
            Some(token),
            Some(&json!({"role": role})),
        )
        .await
    }

    /// `DELETE /sync/v1/spaces/{space}/members/{member}` (own id: leave).
    pub async fn remove_member(&self, token: &str, space: &str, member: &str) -> Reply {
        self.request(
            reqwest::Method::DELETE,
            &format!("/sync/v1/spaces/{space}/members/{member}"),
            Some(token),
            None,
        )
        .await
    }

    /// `POST /sync/v1/spaces/{space}/invitations`.
    pub async fn invite(&self, token: &str, space: &str, email: &str, role: &str) -> Reply {
        self.post(
            &format!("/sync/v1/spaces/{space}/invitations"),
            Some(token),
            &json!({"email": email, "role": role}),
        )
        .await
    }

    /// Invites, asserting 201; returns the invitation's id.
    pub async fn invite_ok(&self, token: &str, space: &str, email: &str, role: &str) -> String {
        let reply = self.invite(token, space, email, role).await;
        assert_eq!(reply.status.as_u16(), 201, "body: {}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }

    /// `GET /sync/v1/spaces/{space}/invitations`.
    pub async fn space_invitations(&self, token: &str, space: &str) -> Reply {
        self.get(&format!("/sync/v1/spaces/{space}/invitations"), Some(token))
            .await
    }

    /// `DELETE /sync/v1/spaces/{space}/invitations/{invitation}`.
    pub async fn revoke(&self, token: &str, space: &str, invitation: &str) -> Reply {
        self.request(
            reqwest::Method::DELETE,
            &format!("/sync/v1/spaces/{space}/invitations/{invitation}"),
            Some(token),
            None,
        )
        .await
    }

    /// `POST /sync/v1/invitations/{invitation}/accept`.
    pub async fn accept(&self, token: &str, invitation: &str) -> Reply {
        self.post(
            &format!("/sync/v1/invitations/{invitation}/accept"),
            Some(token),
            &json!({}),
        )
        .await
    }

    /// `POST /sync/v1/invitations/{invitation}/decline`.
    pub async fn decline(&self, token: &str, invitation: &str) -> Reply {
        self.post(
            &format!("/sync/v1/invitations/{invitation}/decline"),
            Some(token),
            &json!({}),
        )
        .await
    }

    /// Invites `member` into `space` with `role` and accepts as them, asserting both.
    pub async fn join(&self, owner: &User, space: &str, member: &User, role: &str) {
        let invitation = self
            .invite_ok(&owner.token, space, &member.email, role)
            .await;
        self.accept(&member.token, &invitation).await.assert_ok();
    }

    /// `POST /admin/v1/public/write` with `token` as the bearer.
    pub async fn admin_write(&self, token: Option<&str>, writes: Value) -> Reply {
        self.post("/admin/v1/public/write", token, &json!({"writes": writes}))
            .await
    }
}

/// `m` written into space `space` (its `"space"` member).
pub fn in_space(space: &str, mut m: Value) -> Value {
    m["space"] = json!(space);
    m
}

/// An upsert mutation.
pub fn upsert(op: &str, entity: &str, id: &str, base: Option<i64>, payload: Value) -> Value {
    json!({"opId": op, "entity": entity, "entityId": id, "type": "upsert", "baseVersion": base,
           "payload": payload, "clientTime": "2025-01-01T00:00:00Z"})
}

/// An upsert creating `entity/id` (no base version).
pub fn create(op: &str, entity: &str, id: &str, payload: Value) -> Value {
    upsert(op, entity, id, None, payload)
}

/// A delete mutation.
pub fn delete(op: &str, entity: &str, id: &str, base: Option<i64>) -> Value {
    json!({"opId": op, "entity": entity, "entityId": id, "type": "delete", "baseVersion": base,
           "clientTime": "2025-01-01T00:00:00Z"})
}

/// `m` as a member of atomic group `group`.
pub fn grouped(group: &str, mut m: Value) -> Value {
    m["groupId"] = json!(group);
    m
}

/// Each push result's status and reason (`None` when it has none).
pub fn statuses(results: &[Value]) -> Vec<(String, Option<String>)> {
    results
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_string(),
                r["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Each push result's status, reason and `failedOpId` (an aborted group member's).
pub fn group_statuses(results: &[Value]) -> Vec<(String, Option<String>, Option<String>)> {
    results
        .iter()
        .zip(statuses(results))
        .map(|(r, (status, reason))| (status, reason, r["failedOpId"].as_str().map(str::to_string)))
        .collect()
}

/// One expected entry of [`group_statuses`]: status, reason, failed op id.
pub fn group_status(
    status: &str,
    reason: Option<&str>,
    failed: Option<&str>,
) -> (String, Option<String>, Option<String>) {
    (
        status.to_string(),
        reason.map(str::to_string),
        failed.map(str::to_string),
    )
}

/// The record ids of pulled `changes`, in order.
pub fn entity_ids(changes: &[Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| c["entityId"].as_str().unwrap().to_string())
        .collect()
}

/// A fresh op id.
pub fn op() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Reads SSE frames until a `poke` arrives; returns its cursor.
pub async fn next_poke(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
) -> String {
    next_poke_data(stream, buffer).await["cursor"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Reads SSE frames until a `poke` arrives; returns its whole data.
pub async fn next_poke_data(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
) -> Value {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if frame.lines().any(|l| l == "event: poke") {
                let data = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("poke without data");
                return serde_json::from_str(data).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(stream),
        )
        .await
        .expect("no poke within 10 s")
        .expect("stream ended")
        .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// An open event stream (`/sync/v1/events`), read poke by poke.
pub struct Events {
    pub headers: reqwest::header::HeaderMap,
    stream: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    /// Reads frames until a `poke` arrives (10 s at most); returns its cursor.
    pub async fn next_poke(&mut self) -> String {
        next_poke(&mut self.stream, &mut self.buffer).await
    }

    /// Reads frames until a `poke` arrives (10 s at most); returns its data
    /// (`{"cursor", "stream"?, "account"?}`).
    pub async fn next_poke_data(&mut self) -> Value {
        next_poke_data(&mut self.stream, &mut self.buffer).await
    }

    /// Whether a `poke` arrives within `within`.
    pub async fn poke_within(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, self.next_poke_data())
            .await
            .ok()
    }

    /// Whether the server ends the stream within `within` with no poke before the end (other
    /// frames, such as keep-alive comments, are skipped).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let read = async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let frame: String = self.buffer.drain(..end + 2).collect();
                    if frame.lines().any(|l| l == "event: poke") {
                        return false;
                    }
                    continue;
                }
                match futures_util::StreamExt::next(&mut self.stream).await {
                    None | Some(Err(_)) => return true,
                    Some(Ok(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                }
            }
        };
        tokio::time::timeout(within, read).await.unwrap_or(false)
    }
}
