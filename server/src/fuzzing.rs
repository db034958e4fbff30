//! For the fuzz targets (`fuzz/`, feature `fuzzing`): the server's router over a [`Config`]'s
//! database and schema, without a listener or the purger, to drive with `tower::ServiceExt`.

use std::sync::Arc;

use tandem_protocol::Schema;
use tokio_util::sync::CancellationToken;

use crate::auth::sign_in_limit::SignInLimit;
use crate::cursor::CursorCodec;
use crate::events::ChangeHub;
use crate::jwt::JwtKeys;
use crate::routes::AppState;
use crate::storage::Storage;
use crate::Config;

/// The router `run` would serve for `config` (which must set `jwt_secret`).
pub async fn router(config: &Config) -> anyhow::Result<axum::Router> {
    let schema = Schema::from_json(&config.schema_text()?)
        .map_err(|e| anyhow::anyhow!("invalid schema: {e}"))?;
    let storage = Storage::open(&config.db).await?;
    let secret = config
        .jwt_secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the fuzzing router needs a jwt_secret"))?;
    let state = Arc::new(AppState {
        storage,
        schema: Arc::new(schema),
        jwt: JwtKeys::new(secret.as_bytes(), config.access_token_ttl),
        cursors: CursorCodec::new(secret.as_bytes()),
        hub: ChangeHub::new(),
        sign_in_limit: SignInLimit::protocol_default(),
        max_body_bytes: config.max_body_bytes,
        max_batch: config.max_batch,
        sync_paused: config.sync_paused,
        shutdown: CancellationToken::new(),
    });
    Ok(crate::routes::router(state))
}
