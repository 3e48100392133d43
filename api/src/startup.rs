//! Building the hub separately from running it, so `main` and the tests share one
//! path: [`Application::build`] connects, migrates, seeds if asked, and binds;
//! [`Application::run_until_stopped`] serves until the shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::admission::Admission;
use crate::auth::Verifier;
use crate::cache::ResponseCache;
use crate::concurrency::ConcurrencyLimiter;
use crate::config::Config;
use crate::db::Health;
use crate::http::{AppState, router};
use crate::ratelimit::RateLimiter;
use crate::telemetry::Metrics;
use crate::{db, graphql, seed};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sea_orm::DbErr),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("cannot load demo data: {0}")]
    Seed(#[source] seed::SeedError),
    #[error("cannot load demo data: PUPIL_KEY_SECRET is not set")]
    NoPupilKeySecret,
    #[error("cannot set up the Redis cache: {0}")]
    Cache(#[source] redis::RedisError),
    #[error("cannot set up rate limiting through Redis: {0}")]
    RateLimit(#[source] redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let metrics = Metrics::new();
        // Migrations and seeding may rightly outlast any request's statement timeout,
        // so they use a connection of their own.
        let maintenance = db::connect_unbounded(&config)
            .await
            .map_err(StartupError::Connect)?;
        db::migrate(&maintenance)
            .await
            .map_err(StartupError::Migrate)?;
        if let Some(scale) = config.auto_seed {
            seed_if_empty(&maintenance, &config, scale).await?;
        }
        maintenance.close().await.map_err(StartupError::Connect)?;
        let db = db::connect(&config, &metrics)
            .await
            .map_err(StartupError::Connect)?;
        let probe = db::connect_probe(&config)
            .await
            .map_err(StartupError::Connect)?;
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let cache = ResponseCache::new(
            &config.cache,
            // Everything an answer depends on besides the request and the caller's
            // scope. Introspection and the SDL's setting too: whether a document may run
            // at all is checked only on a miss (see `http`), so hubs sharing one Redis
            // with different settings must not share answers.
            format!(
                "{}|{:?}|{:?}|introspection={}|sdl_public={}",
                env!("CARGO_PKG_VERSION"),
                config.disclosure,
                config.inspection,
                config.introspection,
                config.sdl_public
            ),
            metrics.clone(),
        )
        .map_err(StartupError::Cache)?;
        let admission = Admission::new(&cache);
        let rate_limiter = RateLimiter::new(
            &config.rate_limit,
            config.cache.redis_url.as_deref().map(|url| {
                (
                    url,
                    config.cache.redis_prefix.as_str(),
                    config.cache.redis_timeout,
                )
            }),
            metrics.clone(),
        )
        .map_err(StartupError::RateLimit)?;
        let state = AppState {
            health: Health::watch(probe, metrics.clone()),
            rate_limiter,
            concurrency: ConcurrencyLimiter::new(
                config.max_concurrent_per_org,
                config.db_acquire_timeout,
            ),
            introspection: config.introspection,
            sdl_public: config.sdl_public,
            cors: config.cors.clone(),
            db,
            cache,
            admission,
            schema: graphql::build(&config.limits, config.introspection),
            verifier: Verifier::new(&config.auth),
            metrics,
            limits: Arc::new(config.limits.clone()),
            protection: graphql::Protection::new(config.disclosure),
            pupil_key_secret: config.pupil_key_secret.as_deref().map(Arc::from),
            inspection: config.inspection,
        };
        Ok(Application { listener, state })
    }

    /// The bound address (tests bind port 0 and read the real port here).
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight
    /// requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn seed_if_empty(
    db: &DatabaseConnection,
    config: &Config,
    scale: seed::Scale,
) -> Result<(), StartupError> {
    if seed::is_seeded(db).await.map_err(StartupError::Migrate)? {
        return Ok(());
    }
    let secret = config
        .pupil_key_secret
        .as_deref()
        .ok_or(StartupError::NoPupilKeySecret)?;
    tracing::info!(
        ?scale,
        "empty database: loading demo data (first start only)"
    );
    let summary = seed::seed(db, scale, secret, &|line| tracing::info!("seed: {line}"))
        .await
        .map_err(StartupError::Seed)?;
    tracing::info!(
        schools = summary.schools,
        observations = summary.observations,
        pupil_records = summary.pupil_records,
        "demo data loaded"
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
///
/// The handlers are installed when this is called, not when the future is first
/// polled: the server polls it from a task of its own, and a SIGTERM that arrived
/// before that task ran would take the default action and kill the process without a
/// graceful shutdown (in-flight requests cut, spans still buffered for export lost).
/// Call it before announcing the address.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = (interrupt, terminate);
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminate = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = interrupt => {},
                _ = terminate => {},
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutdown signal received: finishing in-flight requests");
    }
}
