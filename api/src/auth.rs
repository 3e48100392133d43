//! Identity: turning an `Authorization: Bearer <JWT>` header into a [`Caller`].
//!
//! The token says only who the user is (`sub`), which organisation they act for (`org`,
//! written `KIND:CODE`, e.g. `LOCAL_AUTHORITY:852`) and which roles they hold. What that
//! organisation *is* — its kind, region, schools — is read from the database on every
//! request, never trusted from the token, so a partner cannot widen its own scope by
//! editing claims. Any token that fails verification is rejected with HTTP 401; it is
//! never downgraded to anonymous, because a client that believes it is authenticated
//! must not silently receive a narrower (or differently cached) answer.
//!
//! Tokens are verified with an HS256 secret (`JWT_SECRET`), with RSA and EC P-256 public
//! keys (`JWT_PUBLIC_KEYS`: a PEM file or a JWKS), or with both, so a deployment can move
//! from a shared secret to its identity provider's keys without a flag day. The keys are
//! parsed once, when the configuration is read; a key file the hub cannot use stops it
//! from starting rather than surfacing later as every request being refused.
//!
//! Each key carries its own algorithm allow-list, fixed by the key's type when it is
//! loaded: the secret verifies only HS256, an RSA key only RS256, a P-256 key only ES256.
//! The `alg` header is written by whoever made the token, so letting it decide how a key
//! is used hands the choice to an attacker. The classic forgeries are exactly that: `none`
//! (no signature at all), and HS256 "signed" with an RSA public key as the HMAC secret —
//! the key is public, so anyone can compute that MAC. A single hub-wide list (HS256, RS256,
//! ES256) would not stop the second, because every algorithm in it is individually
//! allowed; what matters is the pairing of key and algorithm. So the verifier first picks
//! the key — by `kid` when the token names one, otherwise among the keys without a `kid` —
//! and accepts the token's `alg` only if that key's list holds it. jsonwebtoken performs a
//! similar check internally; ours does not rely on it.

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::domain::{OrganisationKind, Role};
use crate::identity::Identity;
use crate::keys::VerificationKey;

/// The claims of a token the hub mints ([`mint`]: `baseline-hub token`, tests).
/// Verification reads tokens more leniently (see `TokenClaims`) so that a missing claim
/// is reported by name.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// `KIND:CODE` of the organisation the user acts for.
    pub org: String,
    pub roles: Vec<String>,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a token was refused. The message is safe to show: it never echoes the token, and
/// apart from an unknown role's name it holds only fixed text (no decoder output, which
/// can quote the claims it failed on).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedHeader,
    #[error("this hub has no token verification key configured")]
    NoKey,
    #[error("token expired")]
    Expired,
    #[error("token names a signing key (kid) this hub does not know")]
    UnknownKey,
    #[error("token's signing algorithm is not accepted for any matching key")]
    AlgorithmNotAccepted,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token header marks as critical (crit) an extension this hub does not understand")]
    UnknownCritical,
    #[error("token rejected: {0}")]
    Invalid(&'static str),
    #[error("token names an unknown organisation")]
    UnknownOrganisation,
    #[error("token names an unknown role: {0}")]
    UnknownRole(String),
    #[error("role {0} cannot be held by someone acting for a {1}")]
    RoleDoesNotFit(Role, OrganisationKind),
    #[error("could not check the token's organisation")]
    Lookup(#[source] sea_orm::DbErr),
}

/// A key ready to verify: the key, its allow-list and the claim checks to apply.
struct Key {
    kid: Option<String>,
    algorithms: &'static [Algorithm],
    decoding: DecodingKey,
    /// The shared claim checks, with `algorithms` narrowed to this key's list, so
    /// jsonwebtoken enforces the same pairing a second time.
    validation: Validation,
}

/// The two header fields used to choose a key (`crit` is checked separately). They are read before the signature is
/// checked, so they are not trusted: they only narrow which configured key may verify.
#[derive(Deserialize)]
struct UnverifiedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims read from a verified token. Every field is optional here so that a
/// missing one is reported by name (by the validation, or below) instead of as a
/// deserialisation failure.
#[derive(Deserialize)]
struct TokenClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Verifies tokens with the configured key(s). Cheap to clone: the handlers' state is
/// cloned per request.
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<[Key]>,
}

impl Verifier {
    pub fn new(config: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        // jsonwebtoken checks `iss`/`aud` only when the token carries them; a configured
        // issuer or audience must also be present, or omitting it would pass.
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let secret = config.jwt_secret.as_deref().map(VerificationKey::hmac);
        let public = config
            .public_keys
            .iter()
            .flat_map(|keys| keys.0.iter().cloned());
        let keys = secret
            .into_iter()
            .chain(public)
            .map(|key| {
                let mut validation = validation.clone();
                validation.algorithms = key.algorithms.to_vec();
                Key {
                    kid: key.kid,
                    algorithms: key.algorithms,
                    decoding: key.key,
                    validation,
                }
            })
            .collect();
        Verifier { keys }
    }

    /// Reads the `Authorization` header value (if any) and checks the token: signature,
    /// expiry, issuer, audience, and that its roles are known. No database work, so a
    /// bad token costs nothing but CPU; `None` means anonymous. Whether the roles fit
    /// the organisation is the policy's rule, applied next by `admission::identify`.
    pub fn identity(&self, header: Option<&str>) -> Result<Option<Identity>, AuthError> {
        let Some(header) = header else {
            return Ok(None);
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MalformedHeader)?;
        let claims = self.verify(token)?;
        let subject = claims
            .sub
            .ok_or(AuthError::Invalid("token has no subject (sub)"))?;
        let mut roles = claims
            .roles
            .iter()
            .map(|r| Role::parse(r).ok_or_else(|| AuthError::UnknownRole(r.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if roles.is_empty() {
            return Err(AuthError::Invalid("token has no roles"));
        }
        roles.sort();
        roles.dedup();
        let org = claims
            .org
            .ok_or(AuthError::Invalid("token has no organisation (org)"))?;
        let (kind, code) = parse_org_ref(&org).ok_or(AuthError::UnknownOrganisation)?;
        Ok(Some(Identity {
            subject,
            kind,
            code: code.to_owned(),
            roles,
        }))
    }

    /// Chooses the key by the token's `kid` and `alg`, then verifies signature and claims.
    fn verify(&self, token: &str) -> Result<TokenClaims, AuthError> {
        if self.keys.is_empty() {
            return Err(AuthError::NoKey);
        }
        let (alg, kid) = read_header(token)?;
        // A kid names one key and the token may not fall back to the others; otherwise
        // an unknown kid would simply mean "try every key".
        if let Some(kid) = &kid
            && !self.keys.iter().any(|k| k.kid.as_ref() == Some(kid))
        {
            return Err(AuthError::UnknownKey);
        }
        // Without a kid, only keys without one are candidates (PEM keys, the secret): a
        // JWKS key is meant to be asked for by name.
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.kid == kid && k.algorithms.contains(&alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(AuthError::AlgorithmNotAccepted);
        }
        for key in candidates {
            match jsonwebtoken::decode::<TokenClaims>(token, &key.decoding, &key.validation) {
                Ok(data) => return Ok(data.claims),
                // Several kid-less keys may share an algorithm (a key rotation in
                // progress); a signature one of them rejects may be the next one's.
                Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => continue,
                // Anything else does not depend on which key was tried: the token is
                // malformed, or its signature verified and a claim then failed.
                Err(err) => return Err(rejection(err.kind())),
            }
        }
        Err(AuthError::BadSignature)
    }
}

/// The JWS extensions this hub implements, which a token may therefore list in its `crit`
/// header. None: RFC 7515 §4.1.11 requires a token naming any other to be rejected,
/// because its issuer has said the token means something else (`b64: false`, say, signs
/// the payload unencoded) without that extension being honoured.
const UNDERSTOOD_CRITICAL: &[&str] = &[];

/// Reads `alg` and `kid` from the (unverified) header. `none`, any name that is not a
/// signing algorithm, and a `crit` naming an extension not in [`UNDERSTOOD_CRITICAL`]
/// fail here — the last whatever the signature, since a valid signature does not make
/// the token mean what the hub would read it as.
fn read_header(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
    const MALFORMED: AuthError = AuthError::Invalid("malformed token");
    let encoded = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| MALFORMED)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|_| MALFORMED)?;
    // Present at all, even `null` or empty (which the RFC forbids producers to send), it
    // must be a list of names this hub understands.
    if let Some(crit) = header.get("crit") {
        let names = crit.as_array().filter(|names| !names.is_empty());
        let understood = names.is_some_and(|names| {
            names.iter().all(|name| {
                name.as_str()
                    .is_some_and(|n| UNDERSTOOD_CRITICAL.contains(&n))
            })
        });
        if !understood {
            return Err(AuthError::UnknownCritical);
        }
    }
    let header: UnverifiedHeader =
        serde_json::from_value(serde_json::Value::Object(header)).map_err(|_| MALFORMED)?;
    let alg = Algorithm::from_str(&header.alg).map_err(|_| AuthError::AlgorithmNotAccepted)?;
    Ok((alg, header.kid))
}

/// A fixed message per failure: jsonwebtoken's own messages can quote the claims.
fn rejection(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::Invalid("token not valid yet (nbf)"),
        ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer (iss)"),
        ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience (aud)"),
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Invalid(match claim.as_str() {
            "exp" => "token has no expiry (exp)",
            "sub" => "token has no subject (sub)",
            "iss" => "token has no issuer (iss)",
            "aud" => "token has no audience (aud)",
            _ => "token lacks a required claim",
        }),
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::AlgorithmNotAccepted
        }
        _ => AuthError::Invalid("malformed token"),
    }
}

/// Splits `KIND:CODE` into a known kind and a code.
pub fn parse_org_ref(text: &str) -> Option<(OrganisationKind, &str)> {
    let (kind, code) = text.split_once(':')?;
    let kind = OrganisationKind::parse(kind)?;
    (!code.is_empty()).then_some((kind, code))
}

/// Signs a development token (HS256). Used by `baseline-hub token` and by tests.
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}
