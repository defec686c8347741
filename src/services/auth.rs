//! Logins, access tokens and password hashing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use crate::domain::audit::{Actor, AuditAction};
use crate::domain::password::{NewPassword, WeakPassword};
use crate::domain::user::{check_binding, BindingError, Role, Standing, User, Username};
use crate::store::{Store, StoreError, UnitOfWork};

/// The one algorithm tokens may use; anything else in a header is refused.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// Clock skew tolerated between the service's instances when reading a token's times.
const LEEWAY_SECONDS: i64 = 5;
/// How long an instance trusts what it last read of a user's standing (disabled, role,
/// forced password change). Each instance reads it from the database, so a change made on
/// any instance takes effect everywhere within this time.
pub const STANDING_TTL: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("username or password is wrong")]
    InvalidCredentials,
    #[error("too many failed logins for this username; try again in {retry_after_seconds} s")]
    TooManyAttempts { retry_after_seconds: i64 },
    #[error("missing or invalid access token")]
    InvalidToken,
    #[error(transparent)]
    WeakPassword(#[from] WeakPassword),
    #[error(transparent)]
    InvalidUsername(#[from] crate::domain::user::InvalidUsername),
    #[error(transparent)]
    Binding(#[from] BindingError),
    #[error("payee {0} not found")]
    PayeeNotFound(Uuid),
    #[error("this user is disabled; an admin can enable it again")]
    Disabled,
    #[error("this token was issued before the password changed; log in again")]
    TokenRevoked,
    #[error(
        "an admin reset your password: change it with POST /v1/auth/password before anything else"
    )]
    PasswordChangeRequired,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("no user is called {0:?}")]
    UserNotFound(String),
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("this change would leave no enabled admin")]
    LastAdmin,
    #[error("role must be admin, staff, auditor, vendor or school")]
    UnknownRole,
    #[error("no audit action has this code; see GET /v1/audit in the API spec for the list")]
    UnknownAuditAction,
    #[error(transparent)]
    Page(#[from] crate::services::paging::PageError),
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
    /// The request's `x-request-id`, recorded with every change the caller makes.
    pub request_id: Option<String>,
}

impl Caller {
    /// The service acting on an operator's behalf without a login (the command line, the
    /// simulation): an admin with the nil id, named for what it is.
    pub fn system(name: &str) -> Self {
        Self {
            user_id: Uuid::nil(),
            username: name.to_owned(),
            role: Role::Admin,
            payee_id: None,
            request_id: None,
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id,
            username: self.username.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl From<&User> for Caller {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.id,
            username: user.username.clone(),
            role: user.role,
            payee_id: user.payee_id,
            request_id: None,
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
    /// The user's credentials version when the token was issued; tokens without it predate
    /// versions and count as version 0.
    #[serde(default)]
    ver: i64,
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
    pub(super) store: Arc<dyn Store>,
    keys: Arc<KeySet>,
    settings: Arc<TokenSettings>,
    /// Verified against when the username does not exist, so timing does not reveal users.
    decoy_hash: Arc<String>,
    hashing: Arc<Semaphore>,
    clock: Clock,
    /// Standing of recent callers, with when it was read.
    standings: Arc<Mutex<HashMap<Uuid, (Instant, Standing)>>>,
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
            standings: Arc::default(),
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
        let matches = self.password_matches(password, hash).await?;
        match user {
            Some(user) if matches => {
                self.store.clear_login_failures(username).await?;
                if user.disabled {
                    return Err(AuthError::Disabled);
                }
                self.store
                    .record_login(user.id, self.clock.now_micros())
                    .await?;
                Ok(user)
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Checks a password against a stored hash off the async workers.
    pub(super) async fn password_matches(
        &self,
        password: &str,
        hash: String,
    ) -> Result<bool, AuthError> {
        let password = password.to_owned();
        // Each argon2 check takes ~19 MiB; a burst of checks waits here instead of
        // exhausting memory.
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| AuthError::Keys(format!("password check unavailable: {e}")))?;
        tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|e| AuthError::Keys(format!("password check failed: {e}")))
    }

    pub(super) fn issue(&self, user: &User) -> IssuedToken {
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
            ver: user.credentials_version,
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

    /// The caller a token proves, as the user stands now: the role and payee binding are the
    /// user's current ones, and a disabled user or a token from before a password change is
    /// refused. The standing is read from the database at most every [`STANDING_TTL`].
    pub async fn admit(
        &self,
        token: &str,
        request_id: Option<String>,
    ) -> Result<(Caller, Standing), AuthError> {
        let (mut caller, version) = self.authenticate(token)?;
        let standing = self.standing(caller.user_id, version).await?;
        if standing.disabled {
            return Err(AuthError::Disabled);
        }
        if standing.credentials_version != version {
            return Err(AuthError::TokenRevoked);
        }
        caller.role = standing.role;
        caller.payee_id = standing.payee_id;
        caller.request_id = request_id;
        Ok((caller, standing))
    }

    async fn standing(&self, user_id: Uuid, token_version: i64) -> Result<Standing, AuthError> {
        let cached = self
            .standings
            .lock()
            .expect("standings lock")
            .get(&user_id)
            .copied();
        match cached {
            // A token newer than what this instance read means the user changed since.
            Some((read_at, standing))
                if read_at.elapsed() < STANDING_TTL
                    && standing.credentials_version >= token_version =>
            {
                Ok(standing)
            }
            _ => {
                let standing = self
                    .store
                    .user_standing(user_id)
                    .await?
                    .ok_or(AuthError::InvalidToken)?;
                self.standings
                    .lock()
                    .expect("standings lock")
                    .insert(user_id, (Instant::now(), standing));
                Ok(standing)
            }
        }
    }

    /// Drops what this instance read of a user, after changing them here.
    pub(super) fn forget_standing(&self, user_id: Uuid) {
        self.standings
            .lock()
            .expect("standings lock")
            .remove(&user_id);
    }

    fn authenticate(&self, token: &str) -> Result<(Caller, i64), AuthError> {
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
        let caller = Caller {
            user_id: claims.sub,
            username: claims.name,
            role: Role::parse(&claims.role).ok_or(AuthError::InvalidToken)?,
            payee_id: claims.payee_id,
            request_id: None,
        };
        Ok((caller, claims.ver))
    }

    /// Creates a user with the password given; the command line's way to make the first
    /// admin, recorded as made by `by`.
    pub async fn create_user(
        &self,
        by: &Caller,
        username: &str,
        role: Role,
        payee_id: Option<Uuid>,
        password: String,
    ) -> Result<User, AuthError> {
        let password = NewPassword::parse(password)?;
        self.add_user(by, username, role, payee_id, password, false)
            .await
    }

    /// Checks the new user, hashes the password and writes the user with its audit record.
    pub(crate) async fn add_user(
        &self,
        by: &Caller,
        username: &str,
        role: Role,
        payee_id: Option<Uuid>,
        password: NewPassword,
        must_change_password: bool,
    ) -> Result<User, AuthError> {
        let username = Username::parse(username)?;
        check_binding(role, payee_id)?;
        let now = self.clock.now_micros();
        let user = User {
            id: self.clock.new_id(),
            username: username.as_str().to_owned(),
            password_hash: hash_password_off_thread(password).await?,
            role,
            payee_id,
            disabled: false,
            must_change_password,
            credentials_version: 0,
            created_at: now,
            last_login_at: None,
        };
        let mut unit = self.store.begin().await?;
        unit.save_user(&user).await.map_err(|e| match e {
            StoreError::UsernameTaken => AuthError::UsernameTaken,
            other => other.into(),
        })?;
        self.audit(&mut unit, by, AuditAction::UserCreate, None, &user)
            .await?;
        unit.commit().await?;
        Ok(user)
    }

    pub(crate) async fn require_payee(&self, payee_id: Option<Uuid>) -> Result<(), AuthError> {
        match payee_id {
            Some(id) if self.store.payee(id).await?.is_none() => Err(AuthError::PayeeNotFound(id)),
            _ => Ok(()),
        }
    }

    /// Records a change to `after` (from `before`) in the unit of work.
    pub(crate) async fn audit(
        &self,
        unit: &mut UnitOfWork<'_>,
        by: &Caller,
        action: AuditAction,
        before: Option<&User>,
        after: &User,
    ) -> Result<(), AuthError> {
        let record = super::audit_record(
            &self.clock,
            by,
            action,
            &after.username,
            before.map(audited_user),
            Some(audited_user(after)),
        );
        unit.append_audit(&record).await?;
        Ok(())
    }
}

/// A user as the audit trail shows it: never the password hash.
fn audited_user(user: &User) -> serde_json::Value {
    serde_json::json!({
        "username": user.username,
        "role": user.role.as_str(),
        "payee_id": user.payee_id,
        "disabled": user.disabled,
        "must_change_password": user.must_change_password,
        "credentials_version": user.credentials_version,
    })
}

pub(crate) async fn hash_password_off_thread(password: NewPassword) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password(&password.into_inner()))
        .await
        .map_err(|e| AuthError::Keys(e.to_string()))?
        .map_err(AuthError::Keys)
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
