//! Baseline Hub: a GraphQL data-sharing hub where local authorities, trusts, regional
//! commissioners and inspectors pool a shared baseline of school data and query it
//! under role-based access.
//!
//! Start with `startup` (how the pieces are wired), then `http` (what a request passes
//! through), `admission` (who is asking, and what they may see), `graphql` (the API),
//! `access` (who may see what), `cache` (answers kept in front of execution), `sync`
//! (how data arrives: bulk writes, imports, the change feed) and `seed` (the demo data).
//! The modules form layers, each using only those below it; the table is in
//! `api/tests/layers.rs`, which fails on an import that goes up.

pub mod access;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod concurrency;
pub mod config;
pub mod db;
pub mod digest;
pub mod disclosure;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod keys;
pub mod partnership;
pub mod pseudonym;
pub mod ratelimit;
pub mod seed;
pub mod signals;
pub mod startup;
pub mod sync;
pub mod telemetry;

/// mimalloc instead of the system allocator. A GraphQL answer is thousands of small
/// short-lived values (rows, strings, response maps) made and dropped on several
/// threads at once; glibc's malloc spent about a quarter of the CPU time of an LA
/// dashboard request on them (`perf`; see README "Benchmarks"). Declared in the
/// library so the server, the CLI, the tests and the benchmarks all run with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
