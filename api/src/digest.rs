//! Digests written as text: the lowercase hex in which cache keys, scope fingerprints,
//! entity tags and sync payload digests are stored and compared. Vocabulary, so that
//! every layer may write a digest without reaching into the one that happens to make
//! the most of them (the cache).

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
