//! Pseudonymous pupil keys: a linkage key the hub keeps, and the keys it shows.
//!
//! Pupil numbers arrive raw from schools' systems; before anything is stored or logged
//! they are replaced by a *linkage key*, an HMAC-SHA256 of the number under a secret held
//! only by the hub (`PUPIL_KEY_SECRET`). A keyed hash (not a plain hash) matters: unique
//! pupil numbers follow a public format, so an unkeyed hash could be reversed by
//! enumerating every valid number. The linkage key is what the hub stores and matches
//! records by; it never leaves the hub.
//!
//! **Why a second key.** Every writer can evaluate whatever key the hub shows for a
//! pupil number of its choosing: it writes a record with that number at one of its
//! schools and reads the record back. If the key shown were the linkage key, a partner
//! could so compute the key of any pupil number it knows and find that pupil among the
//! records other organisations wrote and it may read (an LA reads its residents' records
//! at other LAs' schools): re-identification, by a writer, of another holder's records.
//! So a reader is shown a *reader key* ([`reader_key`]): the linkage key keyed again,
//! under a second key derived from the secret, with the reader's organisation and a
//! *linkage domain* the policy assigns to the record (`access::Access::pupil_key_domain`):
//! the same for every record the reader's organisation may write (it can link those
//! anyway: it wrote the numbers), and per data holder for the rest. A key a writer can
//! obtain by writing is then never equal to the key of a record it cannot write, and no
//! two organisations' keys for the same pupil are equal, so one partner's keys cannot be
//! matched against another's either.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Fewest bytes `PUPIL_KEY_SECRET` may have: as many as the hash's output, so the key
/// is not the weakest part of HMAC-SHA256.
pub const MIN_SECRET_BYTES: usize = 32;

/// What the reader-key key is derived from the secret with: the two keys must differ,
/// so that no reader key is ever a linkage key.
const READER_KEY_LABEL: &[u8] = b"baseline-hub/pupil-key/reader/v1";

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex-encoded linkage key that stands in for a pupil number in the database. Only
/// the hub sees it; readers see [`reader_key`]s.
pub fn linkage_key(secret: &[u8], pupil_number: &str) -> String {
    hex(&hmac(
        secret,
        &[pupil_number.trim().to_ascii_uppercase().as_bytes()],
    ))
}

/// The key a reader is shown for a record: its linkage key, keyed again with the
/// reader's organisation id and the record's linkage domain. Length-prefixed fields,
/// so that no two (organisation, domain) pairs feed the MAC the same bytes.
pub fn reader_key(secret: &[u8], reader: i32, domain: &str, linkage_key: &str) -> String {
    let key = hmac(secret, &[READER_KEY_LABEL]);
    let domain_len = (domain.len() as u64).to_be_bytes();
    hex(&hmac(
        &key,
        &[
            &reader.to_be_bytes(),
            &domain_len,
            domain.as_bytes(),
            linkage_key.as_bytes(),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_number_same_key_and_secret_matters() {
        let a = linkage_key(b"one", "A123456789012");
        assert_eq!(a, linkage_key(b"one", " a123456789012 "));
        assert_ne!(a, linkage_key(b"two", "A123456789012"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("123456789012"));
    }

    #[test]
    fn reader_keys_differ_by_reader_and_domain_and_are_never_the_linkage_key() {
        let linkage = linkage_key(b"secret", "A123456789012");
        let key = reader_key(b"secret", 7, "own", &linkage);
        assert_eq!(key, reader_key(b"secret", 7, "own", &linkage));
        assert_eq!(key.len(), 64);
        assert_ne!(key, linkage);
        assert_ne!(key, reader_key(b"secret", 8, "own", &linkage));
        assert_ne!(key, reader_key(b"secret", 7, "la:12", &linkage));
        assert_ne!(key, reader_key(b"other", 7, "own", &linkage));
        let other_pupil = linkage_key(b"secret", "A123456789013");
        assert_ne!(key, reader_key(b"secret", 7, "own", &other_pupil));
    }
}
