//! Cache keys: what makes two requests "the same question from the same scope".
//!
//! A key is a SHA-256 over the normalised document, the operation name, the variables,
//! the caller's access fingerprint and the settings that shape answers (disclosure
//! thresholds). Normalising is lexical — runs of whitespace, commas and comments fold
//! away, string literals are kept byte for byte — so a dashboard that re-indents its
//! query still shares entries, at the cost of a scan rather than a parse (the hit path
//! never parses GraphQL).

use sha2::{Digest, Sha256};

use crate::digest::hex;

/// A cache key: the hex SHA-256 of everything an answer depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(pub String);

/// Everything that goes into a key.
pub struct KeyParts<'a> {
    pub document: &'a str,
    pub operation_name: Option<&'a str>,
    /// The variables as JSON. `serde_json` maps are ordered (no `preserve_order`
    /// feature), so equal variables always serialise to equal text.
    pub variables: &'a serde_json::Value,
    /// The caller's access fingerprint (see `access::Scope::fingerprint`).
    pub fingerprint: &'a str,
    /// Settings that change answers (disclosure thresholds), so two hubs configured
    /// differently never share entries in Redis.
    pub settings: &'a str,
}

impl Key {
    pub fn new(parts: &KeyParts<'_>) -> Key {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(normalise(parts.document).as_bytes());
        field(parts.operation_name.unwrap_or("").as_bytes());
        field(parts.variables.to_string().as_bytes());
        field(parts.fingerprint.as_bytes());
        field(parts.settings.as_bytes());
        Key(hex(&hash.finalize()))
    }
}

/// The SHA-256 of a document's exact text, as automatic persisted queries name it.
pub fn document_hash(document: &str) -> String {
    hex(&Sha256::digest(document.as_bytes()))
}

/// Folds ignored tokens (whitespace, commas, comments) into single spaces, and drops
/// them entirely next to punctuation, leaving string literals untouched.
pub fn normalise(document: &str) -> String {
    let bytes = document.as_bytes();
    let mut out = String::with_capacity(document.len());
    let mut pending_space = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                pending_space = true;
                i += 1;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                pending_space = true;
            }
            b'"' => {
                let end = string_end(bytes, i);
                push_separator(&mut out, pending_space, b);
                pending_space = false;
                out.push_str(&document[i..end]);
                i = end;
            }
            _ => {
                push_separator(&mut out, pending_space, b);
                pending_space = false;
                // Copy one whole UTF-8 character (multi-byte ones only occur in names
                // that the parser will reject, but must not be split here).
                let len = utf8_len(b);
                let end = (i + len).min(bytes.len());
                out.push_str(document.get(i..end).unwrap_or(""));
                i = end;
            }
        }
    }
    out
}

fn push_separator(out: &mut String, pending_space: bool, next: u8) {
    let punctuation = |c: u8| b"{}()[]:=!$@|&.".contains(&c);
    if pending_space
        && let Some(&last) = out.as_bytes().last()
        && !punctuation(last)
        && !punctuation(next)
    {
        out.push(' ');
    }
}

/// The index just past the string literal starting at `start` (block strings too).
fn string_end(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    bytes.len().min(i)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_and_comments_do_not_change_the_document() {
        let a = "query Q($la: String!) {\n  schools(filter: { laCode: $la }, first: 10) {\n    totalCount # how many\n  }\n}";
        let b = "query Q($la:String!){schools(filter:{laCode:$la} first:10){totalCount}}";
        assert_eq!(normalise(a), normalise(b));
        assert_eq!(
            normalise(b),
            "query Q($la:String!){schools(filter:{laCode:$la}first:10){totalCount}}"
        );
    }

    #[test]
    fn names_stay_apart_and_strings_stay_intact() {
        assert_eq!(normalise("{ a  b }"), "{a b}");
        assert_eq!(
            normalise(r#"{ school(name: "St  Mary's, # not a comment") { urn } }"#),
            r#"{school(name:"St  Mary's, # not a comment"){urn}}"#
        );
        assert_eq!(normalise(r#"{ f(s: "a\"  b") }"#), r#"{f(s:"a\"  b")}"#);
        assert_eq!(
            normalise("{ f(s: \"\"\"x  ,\ny\"\"\") }"),
            "{f(s:\"\"\"x  ,\ny\"\"\")}"
        );
    }

    #[test]
    fn the_document_hash_is_the_sha256_apollo_clients_send() {
        assert_eq!(
            document_hash("{ regions { code } }"),
            "32d23810f7c0d236a0cd28a96d1aaaf926a9f0e9f13227c75d2c683bb3f3413a"
        );
    }

    #[test]
    fn every_part_changes_the_key() {
        let vars = json!({ "la": "852" });
        let base = KeyParts {
            document: "{ a }",
            operation_name: None,
            variables: &vars,
            fingerprint: "f1",
            settings: "s",
        };
        let key = Key::new(&base);
        let other_vars = json!({ "la": "850" });
        let variants = [
            KeyParts {
                document: "{ b }",
                ..base
            },
            KeyParts {
                operation_name: Some("Q"),
                ..base
            },
            KeyParts {
                variables: &other_vars,
                ..base
            },
            KeyParts {
                fingerprint: "f2",
                ..base
            },
            KeyParts {
                settings: "t",
                ..base
            },
        ];
        for variant in variants {
            assert_ne!(Key::new(&variant), key);
        }
        assert_eq!(
            Key::new(&KeyParts {
                document: "{a}",
                ..base
            }),
            key
        );
    }
}
