//! The hub's own command line, linked into the test package so that integration tests
//! can run it as a separate process (and kill it): cargo tells a package's tests the
//! path of that package's binaries only. It is `baseline_hub::cli`, unchanged.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baseline_hub::cli::run(baseline_hub::cli::Cli::from_args()).await
}
