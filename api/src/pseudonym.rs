//! Pseudonymous pupil keys.
//!
//! Pupil numbers arrive raw from schools' systems; before anything is stored or logged
//! they are replaced by an HMAC-SHA256 of the number under a secret held only by the
//! hub. A keyed hash (not a plain hash) matters: unique pupil numbers follow a public
//! format, so an unkeyed hash could be reversed by enumerating every valid number.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Returns the hex-encoded keyed hash that stands in for a pupil number.
pub fn pupil_key(secret: &[u8], pupil_number: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(pupil_number.trim().to_ascii_uppercase().as_bytes());
    let digest = mac.finalize().into_bytes();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_number_same_key_and_secret_matters() {
        let a = pupil_key(b"one", "A123456789012");
        assert_eq!(a, pupil_key(b"one", " a123456789012 "));
        assert_ne!(a, pupil_key(b"two", "A123456789012"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("123456789012"));
    }
}
