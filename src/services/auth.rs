//! Logins, access tokens and password hashing.

use std::path::Path;
use std::sync::Arc;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::user::{Role, User, Username};
use crate::store::{Store, StoreError};

/// The one algorithm tokens may use; anything else in a header is refused.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// Clock skew tolerated between the service's instances when reading a token's times.
const LEEWAY_SECONDS: i64 = 5;
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("username or password is wrong")]
    InvalidCredentials,
    #[error("too many failed logins for this username; try again in {retry_after_seconds} s")]
    TooManyAttempts { retry_after_seconds: i64 },
    #[error("missing or invalid access token")]
    InvalidToken,
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error(transparent)]
    InvalidUsername(#[from] crate::domain::user::InvalidUsername),
    #[error("role {0:?} must be bound to a payee with --payee")]
    PayeeRequired(&'static str),
    #[error("only vendor and school users are bound to a payee")]
    PayeeNotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key file: {0}")]
    Keys(String),
}

/// Who is calling, as proven by a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
    pub payee_id: Option<Uuid>,
}

impl From<&User> for Caller {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.id,
            username: user.username.clone(),
            role: user.role,
            payee_id: user.payee_id,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    name: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payee_id: Option<Uuid>,
    iss: String,
    aud: String,
    iat: i64,
    /// Not before: never set on the tokens this service issues, honoured when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    exp: i64,
    jti: Uuid,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Signing keys: the first signs, every one verifies, so a retired key keeps old tokens valid
/// until it is removed from the set.
pub struct KeySet {
    keys: Vec<SigningKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    secret: String,
}

impl KeySet {
    /// Parses `kid:base64secret,kid:base64secret`.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let keys = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (kid, secret) = part
                    .split_once(':')
                    .ok_or_else(|| AuthError::Keys("expected kid:base64secret".into()))?;
                let secret = BASE64
                    .decode(secret)
                    .map_err(|e| AuthError::Keys(format!("key {kid}: {e}")))?;
                Self::key(kid, &secret)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AuthError::Keys("no keys given".into()));
        }
        Ok(Self { keys })
    }

    fn key(kid: &str, secret: &[u8]) -> Result<SigningKey, AuthError> {
        if secret.len() < 32 {
            return Err(AuthError::Keys(format!(
                "key {kid} is shorter than 32 bytes"
            )));
        }
        Ok(SigningKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Reads the generated key file in `data_dir`, creating it with a fresh random key first.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, AuthError> {
        let path = data_dir.join("jwt-keys.json");
        let io = |e: std::io::Error| AuthError::Keys(format!("{}: {e}", path.display()));
        if !path.exists() {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let stored = vec![StoredKey {
                kid: format!("k{:08x}", rand::random::<u32>()),
                secret: BASE64.encode(secret),
            }];
            write_private(
                &path,
                &serde_json::to_vec_pretty(&stored).expect("keys serialize"),
            )
            .map_err(io)?;
        }
        let stored: Vec<StoredKey> = serde_json::from_slice(&std::fs::read(&path).map_err(io)?)
            .map_err(|e| AuthError::Keys(format!("{}: {e}", path.display())))?;
        let text: Vec<String> = stored
            .iter()
            .map(|k| format!("{}:{}", k.kid, k.secret))
            .collect();
        Self::parse(&text.join(","))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: u64,
    pub max_failures: i64,
    pub window_seconds: i64,
}

pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
}

#[derive(Clone)]
pub struct AuthService {
    store: Arc<dyn Store>,
    keys: Arc<KeySet>,
    settings: Arc<TokenSettings>,
    /// Verified against when the username does not exist, so timing does not reveal users.
    decoy_hash: Arc<String>,
    hashing: Arc<Semaphore>,
    clock: Clock,
}

/// Password checks running at once; more would only queue for the CPU anyway.
const CONCURRENT_PASSWORD_CHECKS: usize = 4;

impl AuthService {
    pub fn new(store: Arc<dyn Store>, keys: KeySet, settings: TokenSettings) -> Self {
        let decoy_hash = hash_password("decoy password nobody has").expect("hashing works");
        Self {
            store,
            keys: Arc::new(keys),
            settings: Arc::new(settings),
            decoy_hash: Arc::new(decoy_hash),
            hashing: Arc::new(Semaphore::new(CONCURRENT_PASSWORD_CHECKS)),
            clock: Clock::default(),
        }
    }

    /// The clock logins are throttled and tokens stamped by (the application's one clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    #[tracing::instrument(skip(self, password))]
    pub async fn login(&self, username: &str, password: &str) -> Result<IssuedToken, AuthError> {
        let user = self.check_password(username, password).await?;
        Ok(self.issue(&user))
    }

    /// The user whose password this is, under the login throttle: every way of logging in
    /// (API tokens, web sessions) goes through here.
    pub async fn check_password(&self, username: &str, password: &str) -> Result<User, AuthError> {
        // A name no user can have is refused before it reaches the throttle table.
        let username = Username::parse(username).map_err(|_| AuthError::InvalidCredentials)?;
        let username = username.as_str();
        let now = self.clock.now_micros();
        let window = self.settings.window_seconds * 1_000_000;
        // Counted before the password is checked, so parallel guesses cannot all slip in
        // under the limit while the first ones are still being verified.
        let (attempts, started) = self
            .store
            .record_login_attempt(username, now, window)
            .await?;
        if attempts > self.settings.max_failures {
            return Err(AuthError::TooManyAttempts {
                retry_after_seconds: (started + window - now) / 1_000_000 + 1,
            });
        }
        let user = self.store.find_user(username).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.decoy_hash.as_ref().clone());
        let password = password.to_owned();
        // Each argon2 check takes ~19 MiB; a burst of logins waits here instead of
        // exhausting memory.
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| AuthError::Keys(format!("password check unavailable: {e}")))?;
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|e| AuthError::Keys(format!("password check failed: {e}")))?;
        match user {
            Some(user) if matches => {
                self.store.clear_login_failures(username).await?;
                Ok(user)
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    fn issue(&self, user: &User) -> IssuedToken {
        let now = self.clock.now_micros().div_euclid(1_000_000);
        let ttl = self.settings.ttl_seconds;
        let claims = Claims {
            sub: user.id,
            name: user.username.clone(),
            role: user.role.as_str().to_owned(),
            payee_id: user.payee_id,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now,
            nbf: None,
            exp: now + ttl as i64,
            jti: Uuid::new_v4(),
        };
        let key = &self.keys.keys[0];
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.kid.clone());
        let access_token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).expect("HS256 signing works");
        IssuedToken {
            access_token,
            expires_in: ttl,
        }
    }

    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.alg != ALGORITHM {
            return Err(AuthError::InvalidToken);
        }
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let key = self
            .keys
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(AuthError::InvalidToken)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = LEEWAY_SECONDS as u64;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        // A signed token is still refused when it claims more than this service would issue:
        // a longer life than the configured one, or a start in the future. Time as
        // jsonwebtoken reads it for `exp`: the system clock.
        let now = chrono::Utc::now().timestamp();
        let lifetime = claims.exp.saturating_sub(claims.iat);
        let max_lifetime = i64::try_from(self.settings.ttl_seconds).unwrap_or(i64::MAX);
        if lifetime > max_lifetime
            || claims.iat > now + LEEWAY_SECONDS
            || claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS)
        {
            return Err(AuthError::InvalidToken);
        }
        Ok(Caller {
            user_id: claims.sub,
            username: claims.name,
            role: Role::parse(&claims.role).ok_or(AuthError::InvalidToken)?,
            payee_id: claims.payee_id,
        })
    }

    /// Creates a user; the CLI's way to make the first admin.
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        payee_id: Option<Uuid>,
        password: String,
    ) -> Result<User, AuthError> {
        let username = Username::parse(username)?;
        match (role.is_payee_bound(), payee_id) {
            (true, None) => return Err(AuthError::PayeeRequired(role.as_str())),
            (false, Some(_)) => return Err(AuthError::PayeeNotAllowed),
            _ => {}
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AuthError::WeakPassword);
        }
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AuthError::Keys(e.to_string()))?
            .map_err(AuthError::Keys)?;
        let user = User {
            id: self.clock.new_id(),
            username: username.as_str().to_owned(),
            password_hash,
            role,
            payee_id,
        };
        self.store
            .create_user(&user, self.clock.now_micros())
            .await?;
        Ok(user)
    }
}

fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_need_long_secrets() {
        assert!(KeySet::parse("k1:c2hvcnQ=").is_err());
        let long = BASE64.encode([7u8; 32]);
        assert!(KeySet::parse(&format!("k2:{long},k1:{long}")).is_ok());
        assert!(KeySet::parse("").is_err());
    }

    #[test]
    fn passwords_round_trip() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
    }
}
