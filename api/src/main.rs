use std::process::ExitCode;

use baseline_hub::cli::{Cli, run};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
