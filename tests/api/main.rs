//! Integration tests: each test spawns the real hub (see `hub_tests::TestHub`) and
//! talks HTTP to it. One binary with modules keeps link time down.

mod access;
mod auth;
mod cache;
mod disclosure;
mod figures;
mod limits;
mod operations;
mod partnership;
mod pupils;
mod reference;
mod schema;
mod sharing;
