//! Token verification keys: the HS256 secret and the RSA and EC P-256 public keys of
//! `JWT_PUBLIC_KEYS` (a PEM file or a JWKS), each with the only algorithms it may verify.
//!
//! Key material is configuration: the key file is parsed once, when the settings are
//! read (`config`), so a file the hub cannot use stops it from starting rather than
//! surfacing later as every request being refused. Why each key carries its own
//! algorithm allow-list, and how a token picks its key, is `auth`'s module
//! documentation; this module only turns key material into [`VerificationKey`]s.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rsa::pkcs8::AssociatedOid as _;
use rsa::pkcs8::SubjectPublicKeyInfoRef;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};

/// The allow-lists. One algorithm each today; a list so that adding, say, PS256 for RSA
/// keys is a change here and nowhere else.
const HMAC_ALGORITHMS: &[Algorithm] = &[Algorithm::HS256];
const RSA_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256];
const P256_ALGORITHMS: &[Algorithm] = &[Algorithm::ES256];

/// Smaller RSA moduli are refused at start: NIST SP 800-131A no longer approves them
/// for signatures, and an issuer still using one should hear about it from us.
const MIN_RSA_BITS: usize = 2048;

/// base64url as JWKs use it. RFC 7518 says unpadded, but some issuers pad; the padding
/// carries no information, so accept either rather than refuse a usable key set.
const JWK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A key the hub verifies tokens with, and the only algorithms it may verify.
#[derive(Clone, Debug)]
pub(crate) struct VerificationKey {
    /// The JWKS `kid`; `None` for PEM keys and the HS256 secret.
    pub(crate) kid: Option<String>,
    /// Derived from the key's type when it is loaded, never from a token.
    pub(crate) algorithms: &'static [Algorithm],
    pub(crate) key: DecodingKey,
}

impl VerificationKey {
    pub(crate) fn hmac(secret: &[u8]) -> Self {
        VerificationKey {
            kid: None,
            algorithms: HMAC_ALGORITHMS,
            key: DecodingKey::from_secret(secret),
        }
    }

    fn rsa(key: &RsaPublicKey, kid: Option<String>) -> Result<Self, String> {
        check_rsa_size(key)?;
        Ok(VerificationKey {
            kid,
            algorithms: RSA_ALGORITHMS,
            key: DecodingKey::from_rsa_raw_components(
                &key.n().to_bytes_be(),
                &key.e().to_bytes_be(),
            ),
        })
    }

    fn p256(key: &p256::PublicKey, kid: Option<String>) -> Self {
        VerificationKey {
            kid,
            algorithms: P256_ALGORITHMS,
            key: DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes()),
        }
    }
}

fn check_rsa_size(key: &RsaPublicKey) -> Result<(), String> {
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(())
}

/// The keys named by `JWT_PUBLIC_KEYS`, parsed and checked once at start.
#[derive(Clone, Debug)]
pub struct PublicKeys(pub(crate) Vec<VerificationKey>);

impl PublicKeys {
    /// Parses a key file: a JWKS (`{"keys": [...]}`) or PEM `PUBLIC KEY` blocks. Every key
    /// must be usable — RSA of at least 2048 bits or EC P-256 — because a key the hub
    /// silently skipped would surface only as its tokens being refused. The error says
    /// what is wrong with which key, for the operator; the caller adds the variable name.
    pub fn parse(contents: &[u8]) -> Result<PublicKeys, String> {
        let text = std::str::from_utf8(contents)
            .map_err(|_| "not text: expected PEM public keys or a JWKS (JSON)".to_owned())?;
        let keys = if text.trim_start().starts_with('{') {
            parse_jwks(text)?
        } else if text.contains("-----BEGIN") {
            parse_pem(text)?
        } else {
            return Err("neither PEM (`-----BEGIN PUBLIC KEY-----`) nor a JWKS \
                        (`{\"keys\": [...]}`)"
                .to_owned());
        };
        if keys.is_empty() {
            return Err("no keys in the file".to_owned());
        }
        Ok(PublicKeys(keys))
    }
}

fn parse_pem(text: &str) -> Result<Vec<VerificationKey>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not valid PEM: {e}"))?;
    blocks
        .iter()
        .enumerate()
        .map(|(i, block)| {
            let n = i + 1;
            match block.tag() {
                "PUBLIC KEY" => {
                    from_spki(block.contents()).map_err(|e| format!("PEM block {n}: {e}"))
                }
                "RSA PUBLIC KEY" => Err(format!(
                    "PEM block {n} is PKCS#1 (`RSA PUBLIC KEY`); convert it with \
                     `openssl rsa -RSAPublicKey_in -pubout`"
                )),
                tag if tag.contains("PRIVATE") => Err(format!(
                    "PEM block {n} is a private key (`{tag}`); this file must hold only public keys"
                )),
                tag => Err(format!(
                    "PEM block {n} is `{tag}`; only `PUBLIC KEY` blocks are accepted"
                )),
            }
        })
        .collect()
}

/// An RSA or EC P-256 key from DER `SubjectPublicKeyInfo` (the body of a PEM
/// `PUBLIC KEY` block).
fn from_spki(der: &[u8]) -> Result<VerificationKey, String> {
    let spki = SubjectPublicKeyInfoRef::try_from(der)
        .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
    let oid = spki.algorithm.oid;
    if oid == rsa::pkcs1::ALGORITHM_OID {
        let key = RsaPublicKey::try_from(spki).map_err(|e| format!("bad RSA key: {e}"))?;
        VerificationKey::rsa(&key, None)
    } else if oid == p256::elliptic_curve::ALGORITHM_OID {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|e| format!("EC key without a named curve: {e}"))?;
        if curve != p256::NistP256::OID {
            return Err(format!(
                "EC key on curve {curve}; only P-256 (1.2.840.10045.3.1.7) is supported"
            ));
        }
        let key = p256::PublicKey::try_from(spki).map_err(|e| format!("bad P-256 key: {e}"))?;
        Ok(VerificationKey::p256(&key, None))
    } else {
        Err(format!(
            "key algorithm {oid} is not supported (RSA and EC P-256 only)"
        ))
    }
}

fn parse_jwks(text: &str) -> Result<Vec<VerificationKey>, String> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| format!("not a JWKS (`{{\"keys\": [...]}}`): {e}"))?;
    let mut keys: Vec<VerificationKey> = Vec::with_capacity(set.keys.len());
    for (i, jwk) in set.keys.iter().enumerate() {
        let name = match &jwk.common.key_id {
            Some(kid) => format!("JWKS key {kid:?}"),
            None => format!("JWKS key {}", i + 1),
        };
        let key = from_jwk(jwk).map_err(|e| format!("{name}: {e}"))?;
        // A kid must pick exactly one key, or choosing "by kid" would mean trying several.
        if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid) {
            return Err(format!("{name}: the kid appears more than once"));
        }
        keys.push(key);
    }
    Ok(keys)
}

fn from_jwk(jwk: &Jwk) -> Result<VerificationKey, String> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(PublicKeyUse::Encryption) => {
            return Err("an encryption key (`use`: `enc`), not a signing key".to_owned());
        }
        Some(PublicKeyUse::Other(other)) => {
            return Err(format!(
                "`use` is {other:?}; only signing keys (`sig`) verify tokens"
            ));
        }
    }
    let decode = |field: &str, value: &str| {
        JWK_BASE64
            .decode(value)
            .map_err(|e| format!("`{field}` is not base64url: {e}"))
    };
    // The key itself is jsonwebtoken's (`DecodingKey::from_jwk`); what is checked here
    // is whether the hub should use it at all, which jsonwebtoken leaves to us: the key
    // type, curve and size, and that the point is on the curve.
    let algorithms = match &jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            let n = BigUint::from_bytes_be(&decode("n", &params.n)?);
            let e = BigUint::from_bytes_be(&decode("e", &params.e)?);
            let key = RsaPublicKey::new(n, e).map_err(|e| format!("bad RSA key: {e}"))?;
            check_rsa_size(&key)?;
            RSA_ALGORITHMS
        }
        AlgorithmParameters::EllipticCurve(params) => {
            if params.curve != EllipticCurve::P256 {
                return Err(format!(
                    "curve {:?} is not supported (P-256 only)",
                    params.curve
                ));
            }
            let mut point = vec![0x04];
            point.extend(decode("x", &params.x)?);
            point.extend(decode("y", &params.y)?);
            p256::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| "`x`/`y` are not a point on P-256".to_owned())?;
            P256_ALGORITHMS
        }
        AlgorithmParameters::OctetKey(_) => {
            // A shared secret in a file of "public" keys is a leak waiting to happen (JWKS
            // files get published), and it would verify HMAC tokens under a kid.
            return Err("a symmetric (`oct`) key; an HMAC secret belongs in JWT_SECRET".to_owned());
        }
        AlgorithmParameters::OctetKeyPair(_) => {
            return Err("`OKP` (EdDSA) keys are not supported (RSA and EC P-256 only)".to_owned());
        }
        _ => return Err("key type is not supported (RSA and EC P-256 only)".to_owned()),
    };
    let key = VerificationKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key: DecodingKey::from_jwk(&unpadded(jwk)).map_err(|e| format!("unusable key: {e}"))?,
    };
    // A declared `alg` must agree with the one the key type implies: a key published
    // for RS512 is not one this hub can honour, and silently using it for RS256 would
    // leave its tokens failing for no visible reason.
    if let Some(declared) = jwk.common.key_algorithm {
        let allowed = key
            .algorithms
            .iter()
            .any(|a| KeyAlgorithm::from(*a) == declared);
        if !allowed {
            return Err(format!(
                "declares `alg` {declared}, but this hub verifies such keys only with {:?}",
                key.algorithms
            ));
        }
    }
    Ok(key)
}

/// The JWK with its base64url fields unpadded: jsonwebtoken reads them strictly as RFC
/// 7518 writes them, and some issuers pad (the padding carries nothing).
fn unpadded(jwk: &Jwk) -> Jwk {
    let mut jwk = jwk.clone();
    let strip = |field: &mut String| {
        let len = field.trim_end_matches('=').len();
        field.truncate(len);
    };
    match &mut jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            strip(&mut params.n);
            strip(&mut params.e);
        }
        AlgorithmParameters::EllipticCurve(params) => {
            strip(&mut params.x);
            strip(&mut params.y);
        }
        _ => {}
    }
    jwk
}
