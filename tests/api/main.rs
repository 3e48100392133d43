//! Integration tests: each test spawns the real hub (see `hub_tests::TestHub`) and
//! talks HTTP to it. One binary with modules keeps link time down.

mod access;
mod auth;
mod cache;
mod disclosure;
mod federation;
mod figures;
mod import;
mod limits;
mod operations;
mod pupils;
mod reference;
mod schema;
mod sharing;
mod sync;
