//! The `baseline-hub` command line: `serve` (the default), `migrate`, `seed`,
//! `export-schema` and `token`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::{Claims, mint, parse_org_ref};
use crate::config::Config;
use crate::domain::Role;
use crate::seed::Scale;
use crate::startup::{Application, shutdown_signal};
use crate::telemetry;
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
    println!("Baseline Hub is listening on http://{addr}");
    println!("  GraphiQL:  open http://{addr}/graphql in a browser");
    if embedded {
        println!(
            "  Token:     cargo run --release -- token --org LOCAL_AUTHORITY:852 --role LA_OFFICER"
        );
        println!("             then add the header  Authorization: Bearer <token>  in GraphiQL");
    }
    app.run_until_stopped(shutdown_signal())
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
