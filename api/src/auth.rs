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
//! Today the hub verifies HS256 tokens signed with `JWT_SECRET`; asymmetric keys (PEM
//! and JWKS) arrive with the access-control work.

use std::sync::Arc;

use entities::organisation;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::domain::{OrganisationKind, Role};

/// The claims the hub reads. Unknown extra claims are ignored.
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

/// An authenticated user, with their organisation as the database describes it.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    pub organisation: organisation::Model,
    pub kind: OrganisationKind,
    pub roles: Vec<Role>,
}

/// Who is asking. Carried in every request's GraphQL context; the `access` module is
/// the only code that decides what a caller may see.
#[derive(Clone, Debug)]
pub enum Caller {
    Anonymous,
    Principal(Arc<Principal>),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anonymous => None,
            Caller::Principal(p) => Some(p),
        }
    }
}

/// Why a token was refused. The message is safe to show: it never echoes the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedHeader,
    #[error("this hub has no token verification key configured")]
    NoKey,
    #[error("token expired")]
    Expired,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token names an unknown organisation")]
    UnknownOrganisation,
    #[error("token names an unknown role: {0}")]
    UnknownRole(String),
    #[error("could not check the token's organisation")]
    Lookup(#[source] sea_orm::DbErr),
}

/// Verifies tokens with the configured key(s).
#[derive(Clone)]
pub struct Verifier {
    key: Option<DecodingKey>,
    validation: Validation,
}

impl Verifier {
    pub fn new(config: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway.as_secs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        match &config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Verifier {
            key: config.jwt_secret.as_deref().map(DecodingKey::from_secret),
            validation,
        }
    }

    /// Reads the `Authorization` header value (if any) and resolves the caller.
    pub async fn caller(
        &self,
        header: Option<&str>,
        db: &DatabaseConnection,
    ) -> Result<Caller, AuthError> {
        let Some(header) = header else {
            return Ok(Caller::Anonymous);
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MalformedHeader)?;
        let key = self.key.as_ref().ok_or(AuthError::NoKey)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                other => AuthError::Invalid(format!("{other:?}")),
            })?
            .claims;
        let roles = claims
            .roles
            .iter()
            .map(|r| Role::parse(r).ok_or_else(|| AuthError::UnknownRole(r.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if roles.is_empty() {
            return Err(AuthError::Invalid("no roles".to_owned()));
        }
        let (kind, code) = parse_org_ref(&claims.org).ok_or(AuthError::UnknownOrganisation)?;
        let organisation = organisation::Entity::find()
            .filter(organisation::Column::Kind.eq(kind.as_str()))
            .filter(organisation::Column::Code.eq(code))
            .one(db)
            .await
            .map_err(AuthError::Lookup)?
            .ok_or(AuthError::UnknownOrganisation)?;
        Ok(Caller::Principal(Arc::new(Principal {
            subject: claims.sub,
            organisation,
            kind,
            roles,
        })))
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
