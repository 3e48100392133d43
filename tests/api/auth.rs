//! Tokens: HS256 with the shared secret, RS256 and ES256 with public keys from a PEM file
//! or a JWKS — and every way a token can be bad. A bad token is a 401, never anonymous,
//! and each rejection is checked for its reason, so a test cannot pass because the token
//! was refused for some other, accidental cause.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use baseline_hub::config::Config;
use hub_tests::{JWT_SECRET, TestHub, now, sign, token};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::rand_core::OsRng;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "baseline-hub";
/// An organisation present in the test data.
const ORG: &str = "LOCAL_AUTHORITY:852";
const RSA_KID: &str = "rsa-1";
const EC_KID: &str = "ec-1";

/// Key pairs generated for this test process, and the key files the hubs load.
struct Keys {
    rsa: EncodingKey,
    /// The RSA public key as PEM text: what an attacker would use as an HMAC secret.
    rsa_public_pem: String,
    ec: EncodingKey,
    /// A P-256 key the hubs do not know.
    stranger: EncodingKey,
    /// Both public keys as two `PUBLIC KEY` blocks.
    pem_file: String,
    /// Both public keys as a JWKS, with kids `rsa-1` and `ec-1`.
    jwks_file: String,
}

/// Generates the keys once per process: RSA generation takes seconds in a debug build.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa_private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let rsa_public = rsa_private.to_public_key();
        let ec_private = p256::SecretKey::random(&mut OsRng);
        let ec_public = ec_private.public_key();
        let stranger = p256::SecretKey::random(&mut OsRng);

        let rsa_public_pem = rsa_public.to_public_key_pem(LineEnding::LF).unwrap();
        let ec_public_pem = ec_public.to_public_key_pem(LineEnding::LF).unwrap();
        let point = ec_public.to_encoded_point(false);
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let jwks = json!({ "keys": [
            { "kty": "RSA", "kid": RSA_KID, "use": "sig", "alg": "RS256",
              "n": b64(&rsa_public.n().to_bytes_be()), "e": b64(&rsa_public.e().to_bytes_be()) },
            { "kty": "EC", "kid": EC_KID, "crv": "P-256",
              "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()) },
        ]});

        Keys {
            rsa: EncodingKey::from_rsa_der(rsa_private.to_pkcs1_der().unwrap().as_bytes()),
            ec: EncodingKey::from_ec_der(ec_private.to_pkcs8_der().unwrap().as_bytes()),
            stranger: EncodingKey::from_ec_der(stranger.to_pkcs8_der().unwrap().as_bytes()),
            pem_file: write_key_file(
                "public-keys.pem",
                &format!("{rsa_public_pem}{ec_public_pem}"),
            ),
            jwks_file: write_key_file("jwks.json", &jwks.to_string()),
            rsa_public_pem,
        }
    })
}

fn write_key_file(name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("baseline-hub-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A hub verifying with the PEM keys and the test HS256 secret, requiring iss and aud.
async fn pem_hub() -> TestHub {
    TestHub::spawn_with(&[
        ("JWT_PUBLIC_KEYS", &keys().pem_file),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
    ])
    .await
}

/// A hub verifying with the JWKS and the test HS256 secret, requiring iss and aud.
async fn jwks_hub() -> TestHub {
    TestHub::spawn_with(&[
        ("JWT_PUBLIC_KEYS", &keys().jwks_file),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
    ])
    .await
}

/// Claims that the PEM and JWKS hubs accept; tests change one thing at a time.
fn claims() -> Value {
    json!({
        "sub": "user-1",
        "org": ORG,
        "roles": ["LA_OFFICER"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 3600,
    })
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

fn without(mut claims: Value, field: &str) -> Value {
    claims.as_object_mut().unwrap().remove(field);
    claims
}

fn rs256(claims: &Value) -> String {
    sign(claims, Header::new(Algorithm::RS256), &keys().rsa)
}

fn es256(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    sign(claims, header, &keys().ec)
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Asserts the full 401 contract, and that the message gives `reason`.
async fn assert_rejected(hub: &TestHub, bearer: &str, reason: &str) {
    let response = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .bearer_auth(bearer)
        .json(&json!({ "query": "{ regions { code } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "token {bearer:.20}… should be rejected ({reason})"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("challenge header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(challenge, r#"Bearer error="invalid_token""#);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(reason),
        "expected a rejection for {reason:?}, got {message:?}"
    );
    assert!(
        !body.to_string().contains(bearer),
        "the token is never echoed"
    );
}

/// Asserts the token authenticates: figures need a caller, so reading one proves it.
async fn assert_accepted(hub: &TestHub, bearer: &str) {
    let figures = hub
        .query(
            Some(bearer),
            "{ observations(first: 1) { edges { node { value } } } }",
            json!({}),
        )
        .await;
    assert!(figures.get("errors").is_none(), "{figures}");
    assert_eq!(
        figures["data"]["observations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{figures}"
    );
}

// --- The HS256 secret on its own -------------------------------------------------

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let hub = TestHub::spawn().await;
    assert_rejected(&hub, "garbage", "malformed").await;
    assert_rejected(&hub, &token(ORG, &["LA_OFFICER"], -3600), "expired").await;
    assert_rejected(
        &hub,
        &token("LOCAL_AUTHORITY:999", &["LA_OFFICER"], 3600),
        "unknown organisation",
    )
    .await;
    assert_rejected(
        &hub,
        &token("NOT_A_KIND:852", &["LA_OFFICER"], 3600),
        "unknown organisation",
    )
    .await;
    assert_rejected(&hub, &token(ORG, &["SUPERUSER"], 3600), "unknown role").await;
    assert_rejected(&hub, &token(ORG, &[], 3600), "no roles").await;
    let good = token(ORG, &["LA_OFFICER"], 3600);
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, _signature) = rest.split_once('.').unwrap();
    assert_rejected(&hub, &format!("{head}.{payload}.AAAA"), "signature").await;
    assert!(JWT_SECRET.len() >= 32);
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let other = TestHub::spawn_with(&[(
        "JWT_SECRET",
        "a-different-secret-that-is-also-32-bytes-long",
    )])
    .await;
    assert_rejected(&other, &token(ORG, &["LA_OFFICER"], 3600), "signature").await;
}

#[tokio::test]
async fn a_good_token_reads_figures() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let figures = hub
        .query(
            Some(&token),
            "{ observations(first: 3) { edges { node { value } } } }",
            json!({}),
        )
        .await;
    assert!(figures.get("errors").is_none(), "{figures}");
    assert_eq!(
        figures["data"]["observations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

// --- Public keys: accepted ---------------------------------------------------------

#[tokio::test]
async fn rs256_is_verified_with_a_pem_key() {
    let hub = pem_hub().await;
    assert_accepted(&hub, &rs256(&claims())).await;
}

#[tokio::test]
async fn es256_is_verified_with_the_second_pem_block() {
    let hub = pem_hub().await;
    assert_accepted(&hub, &es256(&claims(), None)).await;
}

#[tokio::test]
async fn jwks_keys_are_chosen_by_kid() {
    let hub = jwks_hub().await;
    assert_accepted(&hub, &es256(&claims(), Some(EC_KID))).await;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(RSA_KID.to_owned());
    assert_accepted(&hub, &sign(&claims(), header, &keys().rsa)).await;
}

#[tokio::test]
async fn hs256_still_works_alongside_public_keys() {
    let hub = pem_hub().await;
    let secret = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    assert_accepted(
        &hub,
        &sign(&claims(), Header::new(Algorithm::HS256), &secret),
    )
    .await;
}

#[tokio::test]
async fn a_token_within_the_leeway_is_accepted() {
    // The default leeway is 30 seconds.
    let hub = pem_hub().await;
    assert_accepted(&hub, &rs256(&with(claims(), "exp", json!(now() - 10)))).await;
    assert_accepted(&hub, &rs256(&with(claims(), "nbf", json!(now() + 10)))).await;
}

#[tokio::test]
async fn the_leeway_is_configurable() {
    let strict = TestHub::spawn_with(&[
        ("JWT_PUBLIC_KEYS", &keys().pem_file),
        ("JWT_LEEWAY_SECONDS", "0"),
    ])
    .await;
    let token = rs256(&with(claims(), "exp", json!(now() - 10)));
    assert_rejected(&strict, &token, "expired").await;
}

// --- Public keys: refused ----------------------------------------------------------

#[tokio::test]
async fn an_expired_token_is_refused() {
    let token = rs256(&with(claims(), "exp", json!(now() - 3600)));
    assert_rejected(&pem_hub().await, &token, "expired").await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let token = rs256(&with(claims(), "nbf", json!(now() + 3600)));
    assert_rejected(&pem_hub().await, &token, "not valid yet").await;
}

#[tokio::test]
async fn a_wrong_signature_is_refused() {
    let hub = pem_hub().await;
    // A genuine signature over other claims: the payload was edited after signing.
    let genuine = rs256(&claims());
    let (head, rest) = genuine.split_once('.').unwrap();
    let (_payload, signature) = rest.split_once('.').unwrap();
    let edited = b64_json(&with(claims(), "roles", json!(["HUB_ADMIN"])));
    assert_rejected(&hub, &format!("{head}.{edited}.{signature}"), "signature").await;
    // Signed by a P-256 key the hub does not know.
    let stranger = sign(&claims(), Header::new(Algorithm::ES256), &keys().stranger);
    assert_rejected(&hub, &stranger, "signature").await;
}

/// RFC 7515 §4.1.11: a header's `crit` lists extensions the recipient must understand
/// or reject the token. The hub understands none, so every token with one is refused —
/// each of these correctly signed, so only `crit` can be the reason.
#[tokio::test]
async fn a_critical_header_extension_the_hub_does_not_know_is_refused() {
    let hub = pem_hub().await;
    let secret = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let critical = |alg: Algorithm, crit: &[&str]| {
        let mut header = Header::new(alg);
        header.crit = Some(crit.iter().map(|c| c.to_string()).collect());
        header
    };
    // Unencoded payload (RFC 7797): the issuer meant the signature to cover other bytes.
    let mut unencoded = critical(Algorithm::HS256, &["b64"]);
    unencoded.extras.insert("b64", false);
    let cases = [
        sign(&claims(), unencoded, &secret),
        sign(
            &claims(),
            critical(Algorithm::RS256, &["https://idp.example.test/acr"]),
            &keys().rsa,
        ),
        sign(&claims(), critical(Algorithm::ES256, &["exp"]), &keys().ec),
        // An empty list is forbidden to producers; it is not "nothing critical".
        sign(&claims(), critical(Algorithm::HS256, &[]), &secret),
    ];
    for token in &cases {
        assert_rejected(&hub, token, "critical (crit)").await;
    }
    // The same unknown parameter, not marked critical, is ignored as the RFC says.
    let mut extended = Header::new(Algorithm::HS256);
    extended.extras.insert("b64", false);
    assert_accepted(&hub, &sign(&claims(), extended, &secret)).await;
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    let header = b64_json(&json!({ "alg": "none", "typ": "JWT" }));
    let token = format!("{header}.{}.", b64_json(&claims()));
    assert_rejected(&pem_hub().await, &token, "algorithm").await;
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The public key as an HMAC secret: anyone could compute this signature.
    let forged = sign(
        &claims(),
        Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(keys().rsa_public_pem.as_bytes()),
    );
    // With no HS256 secret configured, no key may verify HS256 at all.
    let public_only =
        TestHub::spawn_with(&[("JWT_PUBLIC_KEYS", &keys().pem_file), ("JWT_SECRET", "")]).await;
    assert_rejected(&public_only, &forged, "algorithm").await;
    // With one, HS256 goes to the secret, never to the RSA key.
    assert_rejected(&pem_hub().await, &forged, "signature").await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let token = rs256(&with(claims(), "aud", json!("another-service")));
    assert_rejected(&pem_hub().await, &token, "audience").await;
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let token = rs256(&with(claims(), "iss", json!("https://elsewhere.example")));
    assert_rejected(&pem_hub().await, &token, "issuer").await;
}

#[tokio::test]
async fn a_missing_issuer_is_refused_when_one_is_configured() {
    let token = rs256(&without(claims(), "iss"));
    assert_rejected(&pem_hub().await, &token, "no issuer").await;
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let token = rs256(&without(claims(), "exp"));
    assert_rejected(&pem_hub().await, &token, "no expiry").await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let hub = jwks_hub().await;
    assert_rejected(&hub, &es256(&claims(), Some("retired-key")), "kid").await;
}

#[tokio::test]
async fn a_kid_naming_a_key_of_another_type_is_refused() {
    // RS256 may not be verified with the EC key, whatever the token says.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(EC_KID.to_owned());
    let token = sign(&claims(), header, &keys().rsa);
    assert_rejected(&jwks_hub().await, &token, "algorithm").await;
}

#[tokio::test]
async fn an_unknown_organisation_is_refused() {
    let token = rs256(&with(claims(), "org", json!("LOCAL_AUTHORITY:999")));
    assert_rejected(&pem_hub().await, &token, "unknown organisation").await;
}

#[tokio::test]
async fn an_unknown_role_is_refused() {
    let token = rs256(&with(claims(), "roles", json!(["SUPERUSER"])));
    assert_rejected(&pem_hub().await, &token, "unknown role").await;
}

#[tokio::test]
async fn garbage_is_refused() {
    let hub = pem_hub().await;
    assert_rejected(&hub, "garbage", "malformed").await;
    assert_rejected(&hub, "a.b.c", "malformed").await;
}

// --- Key files are checked at start ------------------------------------------------

/// The configuration problems reported for `JWT_PUBLIC_KEYS` naming a file with
/// `contents` (`None`: a path that does not exist).
fn key_file_problem(name: &str, contents: Option<&str>) -> String {
    let path = match contents {
        Some(contents) => write_key_file(name, contents),
        None => "/nonexistent/baseline-hub/keys.pem".to_owned(),
    };
    let vars = HashMap::from([("JWT_PUBLIC_KEYS".to_owned(), path)]);
    let err = Config::from_vars(&vars).expect_err("the key file should be refused");
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].starts_with("JWT_PUBLIC_KEYS"), "{err}");
    err.0[0].clone()
}

#[test]
fn key_files_the_hub_cannot_use_stop_it_starting() {
    let cases: [(&str, Option<String>, &str); 8] = [
        ("missing", None, "cannot read"),
        ("text", Some("not a key".into()), "neither PEM"),
        ("empty-jwks", Some(r#"{"keys":[]}"#.into()), "no keys"),
        (
            "private-key",
            Some(
                p256::SecretKey::random(&mut OsRng)
                    .to_pkcs8_pem(LineEnding::LF)
                    .unwrap()
                    .to_string(),
            ),
            "private key",
        ),
        (
            "small-rsa",
            Some(
                rsa::RsaPrivateKey::new(&mut OsRng, 1024)
                    .unwrap()
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap(),
            ),
            "at least 2048",
        ),
        (
            "oct-jwk",
            Some(r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#.into()),
            "symmetric",
        ),
        (
            "bad-point",
            Some(
                json!({ "keys": [
                    { "kty": "EC", "kid": "k", "crv": "P-256", "x": "AA", "y": "AA" },
                ]})
                .to_string(),
            ),
            "not a point on P-256",
        ),
        (
            "wrong-alg",
            Some({
                let mut jwks: Value =
                    serde_json::from_str(&std::fs::read_to_string(&keys().jwks_file).unwrap())
                        .unwrap();
                jwks["keys"][0]["alg"] = json!("RS512");
                jwks.to_string()
            }),
            "declares `alg` RS512",
        ),
    ];
    for (name, contents, expected) in cases {
        let problem = key_file_problem(name, contents.as_deref());
        assert!(
            problem.contains(expected),
            "{name}: expected {expected:?} in {problem:?}"
        );
    }
    let mut jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(&keys().jwks_file).unwrap()).unwrap();
    jwks["keys"][1]["kid"] = json!(RSA_KID);
    let problem = key_file_problem("duplicate-kid", Some(&jwks.to_string()));
    assert!(problem.contains("more than once"), "{problem}");
}
