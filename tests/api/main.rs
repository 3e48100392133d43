//! Integration tests: each test spawns the real hub (see `hub_tests::TestHub`) and
//! talks HTTP to it. One binary with modules keeps link time down.

mod access;
mod auth;
mod bounded;
mod cache;
mod clients;
mod differencing;
mod disclosure;
mod federation;
mod figures;
mod hostile;
mod import;
mod limits;
mod logs;
mod memory;
mod operations;
mod partnership;
mod pupils;
mod ratelimit;
mod reference;
mod resilience;
mod schema;
mod secrets;
mod sharing;
mod sync;
mod trace_export;
