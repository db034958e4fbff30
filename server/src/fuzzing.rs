//! For the fuzz targets (`fuzz/`, feature `fuzzing`): the server's router over a [`Config`]'s
//! database and schema, without a listener or the purger, to drive with `tower::ServiceExt`.

use tandem_protocol::Schema;
use tokio_util::sync::CancellationToken;

use crate::events::ChangeHub;
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
    let clock: std::sync::Arc<dyn crate::Clock> = std::sync::Arc::new(crate::SystemClock);
    let control =
        crate::control::ControlPlane::new(storage.clone(), clock.clone(), config.access_token_ttl);
    let state = crate::app_state(
        config,
        storage,
        schema,
        &secret,
        None,
        ChangeHub::new(),
        control,
        CancellationToken::new(),
        clock,
    )?;
    Ok(crate::routes::router(state))
}
