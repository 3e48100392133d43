//! The `baseline-hub` command line: `serve` (the default), `migrate`, `seed`,
//! `export-schema`, `token` and `import`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use indicatif::{ProgressBar, ProgressStyle};

use crate::access::WriteScope;
use crate::auth::{Claims, mint, parse_org_ref};
use crate::cache::ResponseCache;
use crate::config::Config;
use crate::domain::Role;
use crate::identity::Principal;
use crate::seed::Scale;
use crate::startup::{Application, shutdown_signal};
use crate::sync::{Source, Writer, import};
use crate::telemetry::{self, Metrics};
use crate::{db, graphql, seed};

#[derive(Parser)]
#[command(
    name = "baseline-hub",
    version,
    about = "Baseline Hub: a shared baseline of school data, queried over GraphQL under role-based access"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Fill an empty database with deterministic demo data.
    Seed {
        #[arg(long, value_enum, default_value = "demo")]
        scale: Scale,
    },
    /// Print the GraphQL schema (SDL), or write it to a file.
    ExportSchema {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import figures from a CSV file in the official open-statistics layout.
    Import {
        /// The CSV file (see docs/import-example.csv for the accepted layout).
        file: PathBuf,
        /// The organisation the figures come from, as KIND:CODE; its write scope applies.
        /// The default, the hub itself, publishes official statistics at every level.
        #[arg(long, default_value = "HUB:HUB")]
        org: String,
        /// Validate the whole file first and write nothing if any row is bad.
        #[arg(long)]
        strict: bool,
        /// Start from the top even if an earlier import of this file stopped half-way.
        #[arg(long)]
        restart: bool,
        /// Write every rejected row (line, field, reason) to this CSV file.
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Figures per transaction (and per checkpoint).
        #[arg(long, default_value_t = crate::sync::import::DEFAULT_BATCH)]
        batch: usize,
        /// Milliseconds to wait after each committed batch, so that a large import
        /// leaves the database room for the dashboards reading it meanwhile.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Mint a development token (only where a development signing secret is configured).
    Token {
        /// The organisation, as KIND:CODE, e.g. LOCAL_AUTHORITY:852 or TRUST:10012.
        #[arg(long)]
        org: String,
        /// A role, e.g. LA_OFFICER; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The user the token names.
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 8)]
        hours: u64,
    },
}

impl Cli {
    /// The command line of this process (exits with usage on bad arguments).
    pub fn from_args() -> Cli {
        Cli::parse()
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    if let Some(Command::ExportSchema { output }) = &cli.command {
        return export_schema(output.as_deref());
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = telemetry::init_logging(config.log_json, config.otlp_endpoint.as_deref());
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Seed { scale } => seed_command(config, scale).await,
        Command::Token {
            org,
            roles,
            sub,
            hours,
        } => token(config, &org, roles, sub, hours).await,
        Command::Import {
            file,
            org,
            strict,
            restart,
            rejects,
            batch,
            pause_ms,
        } => {
            let options = import::Options {
                path: file,
                strict,
                restart,
                batch: batch.clamp(1, crate::sync::rows::MAX_ROWS_PER_CALL),
                pause: std::time::Duration::from_millis(pause_ms),
                rejects,
            };
            import_command(config, &org, options).await
        }
        Command::ExportSchema { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let embedded = config.embedded;
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let addr = app.local_addr();
    // Before the address is announced: whoever learns it may stop the hub at once.
    let shutdown = shutdown_signal();
    println!("Baseline Hub is listening on http://{addr}");
    println!("  GraphiQL:  open http://{addr}/graphql in a browser");
    if embedded {
        println!(
            "  Token:     cargo run --release -- token --org LOCAL_AUTHORITY:852 --role LA_OFFICER"
        );
        println!("             then add the header  Authorization: Bearer <token>  in GraphiQL");
    }
    app.run_until_stopped(shutdown)
        .await
        .map_err(|e| e.to_string())
}

/// Connects and brings the schema up to date: every command that touches data starts here.
async fn open_database(config: &Config) -> Result<sea_orm::DatabaseConnection, String> {
    let db = db::connect_unbounded(config)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    db::migrate(&db)
        .await
        .map_err(|e| format!("migration failed: {e}"))?;
    Ok(db)
}

async fn migrate(config: Config) -> Result<(), String> {
    open_database(&config).await?;
    println!("migrations applied");
    Ok(())
}

async fn seed_command(config: Config, scale: Scale) -> Result<(), String> {
    let secret = config
        .pupil_key_secret
        .clone()
        .ok_or("PUPIL_KEY_SECRET must be set to seed pupil records")?;
    let db = open_database(&config).await?;
    let started = std::time::Instant::now();
    let summary = seed::seed(&db, scale, &secret, &|line| println!("{line}"))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "seeded {scale:?} in {:.1}s: {} regions, {} organisations, {} schools, {} observations, {} pupil records",
        started.elapsed().as_secs_f64(),
        summary.regions,
        summary.organisations,
        summary.schools,
        summary.observations,
        summary.pupil_records
    );
    Ok(())
}

async fn import_command(config: Config, org: &str, options: import::Options) -> Result<(), String> {
    let (kind, code) = parse_org_ref(org).ok_or_else(|| {
        format!("--org must be KIND:CODE, e.g. LOCAL_AUTHORITY:852 (got {org:?})")
    })?;
    let db = open_database(&config).await?;
    let organisation = db::organisation_by_code(&db, kind, code)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no organisation {org}"))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let writer = Writer {
        scope: WriteScope::of(&organisation),
        principal: Principal {
            subject: format!("cli:{user}"),
            kind,
            organisation,
            roles: vec![Role::SyncAgent],
        },
        source: Source::CsvImport,
    };
    let size = std::fs::metadata(&options.path)
        .map_err(|e| format!("cannot read {}: {e}", options.path.display()))?
        .len();
    let bar = ImportProgress::new(size);
    let summary = import::run(&db, &writer, &options, &bar)
        .await
        .map_err(|e| e.to_string());
    bar.0.finish_and_clear();
    let summary = summary?;
    if summary.already_imported {
        println!(
            "{} was imported completely by sync run {}; nothing to do (use --restart to import it again)",
            options.path.display(),
            summary.run_id
        );
        return Ok(());
    }
    if let Some(line) = summary.resumed_after_line {
        println!("resumed sync run {} after line {line}", summary.run_id);
    }
    println!(
        "imported {} in {:.1}s (sync run {}): {} lines, {} figures ({:.0}/s): {} written, {} unchanged, {} not published, {} lines rejected",
        options.path.display(),
        summary.elapsed.as_secs_f64(),
        summary.run_id,
        summary.lines,
        summary.figures,
        summary.figures_per_second(),
        summary.written,
        summary.unchanged,
        summary.not_published,
        summary.rejected
    );
    if summary.written > 0 {
        invalidate_after_import(&config, &summary.indicators).await;
    }
    Ok(())
}

/// Tells running hubs that figures changed. Through Redis this reaches every instance;
/// without Redis each hub's in-process cache expires the old answers within
/// `CACHE_TTL_SECONDS`.
async fn invalidate_after_import(config: &Config, indicators: &[String]) {
    if config.cache.redis_url.is_none() {
        println!(
            "note: no REDIS_URL, so running hubs see the new figures when their cached answers expire (CACHE_TTL_SECONDS)"
        );
        return;
    }
    let cache = match ResponseCache::new(&config.cache, String::new(), Metrics::new()) {
        Ok(cache) if cache.redis_ready(std::time::Duration::from_secs(5)).await => cache,
        _ => {
            eprintln!(
                "warning: could not reach Redis to invalidate cached answers; they expire within CACHE_TTL_SECONDS"
            );
            return;
        }
    };
    let tags: Vec<String> = indicators
        .iter()
        .map(|code| crate::cache::tags::figures(code))
        .chain([crate::cache::tags::ALL_FIGURES.to_owned()])
        .collect();
    cache.invalidate(&tags).await;
}

/// The import's progress bar: bytes of the file, figures and figures per second.
struct ImportProgress(ProgressBar, std::time::Instant);

impl ImportProgress {
    fn new(bytes: u64) -> Self {
        let bar = ProgressBar::new(bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        ImportProgress(bar, std::time::Instant::now())
    }
}

impl import::Progress for ImportProgress {
    fn advance(&self, bytes: u64, figures: u64) {
        self.0.set_position(bytes);
        let rate = figures as f64 / self.1.elapsed().as_secs_f64().max(1e-9);
        self.0
            .set_message(format!("{figures} figures, {rate:.0}/s"));
    }
}

fn export_schema(output: Option<&std::path::Path>) -> ExitCode {
    let sdl = graphql::sdl();
    match output {
        None => {
            print!("{sdl}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, sdl) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: cannot write {}: {err}", path.display());
                ExitCode::FAILURE
            }
        },
    }
}

async fn token(
    config: Config,
    org: &str,
    roles: Vec<String>,
    sub: String,
    hours: u64,
) -> Result<(), String> {
    if !config.auth.dev_tokens {
        return Err("development tokens are disabled: this hub has no development signing secret \
                    (they are on by default only on the embedded default; set HUB_DEV_TOKENS=true and JWT_SECRET to enable)"
            .to_owned());
    }
    let secret = config
        .auth
        .jwt_secret
        .clone()
        .ok_or("JWT_SECRET is not set")?;
    for role in &roles {
        if Role::parse(role).is_none() {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            return Err(format!(
                "unknown role {role:?}; roles are {}",
                known.join(", ")
            ));
        }
    }
    let (kind, code) = parse_org_ref(org).ok_or_else(|| {
        format!("--org must be KIND:CODE, e.g. LOCAL_AUTHORITY:852 (got {org:?})")
    })?;
    let db = open_database(&config).await?;
    let exists = db::organisation_by_code(&db, kind, code)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        return Err(format!(
            "no organisation {org}; start the hub once so the demo data is loaded, or check the code"
        ));
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub,
        org: org.to_owned(),
        roles,
        exp: now + hours * 3600,
        iat: Some(now),
        iss: config.auth.issuer.clone(),
        aud: config.auth.audience.clone(),
    };
    let token = mint(&secret, &claims).map_err(|e| format!("cannot sign: {e}"))?;
    println!("{token}");
    Ok(())
}
