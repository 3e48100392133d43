pub mod domain;
pub mod pseudonym;
pub mod seed;
