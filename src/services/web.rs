//! Browser logins for the web app: server-side sessions behind a random cookie token, and the
//! one-time setup link that creates the first admin without the command line. Passwords are
//! checked by the same throttled path as API logins ([`AuthService::check_password`]).

pub mod board;

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::domain::user::{Role, User};
use crate::services::auth::{AuthError, AuthService, Caller};
use crate::store::web::NewWebSession;
use crate::store::{Store, StoreError};

/// A session used again after this long has its expiry slid forward (not on every request,
/// so a page's images and its event stream do not each write to the database).
const SLIDE_AFTER_MICROS: i64 = 60 * 1_000_000;

/// How long a session lives since it was last used.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Vendors and schools: a market day on the stall's phone.
    pub payee_seconds: i64,
    /// Everyone else.
    pub staff_seconds: i64,
}

/// A session just opened: the token goes into the cookie and nowhere else.
pub struct OpenedSession {
    pub token: String,
    pub max_age_seconds: i64,
    pub caller: Caller,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No setup is open (an admin exists), or the token is not the one printed.
    #[error("this setup link is not valid")]
    Closed,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

#[derive(Clone)]
pub struct WebService {
    store: Arc<dyn Store>,
    auth: AuthService,
    settings: SessionSettings,
    clock: Clock,
    /// The first-run setup token, while no admin exists and it has not been used.
    setup_token: Arc<Mutex<Option<String>>>,
    /// Counts market board links revoked here: open boards check theirs when it changes.
    board_revocations: tokio::sync::watch::Sender<u64>,
}

/// A fresh unguessable token: 32 random bytes, URL-safe.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` is the setup token held, compared in constant time.
fn is_setup_token(held: &Option<String>, token: &str) -> bool {
    held.as_deref()
        .is_some_and(|held| bool::from(held.as_bytes().ct_eq(token.as_bytes())))
}

/// What the database keeps of a session (or market board) token.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl WebService {
    pub fn new(
        store: Arc<dyn Store>,
        auth: AuthService,
        settings: SessionSettings,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            auth,
            settings,
            clock,
            setup_token: Arc::new(Mutex::new(None)),
            board_revocations: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lifetime_seconds(&self, role: Role) -> i64 {
        if role.is_payee_bound() {
            self.settings.payee_seconds
        } else {
            self.settings.staff_seconds
        }
    }

    /// Checks the password (throttled like API logins) and opens a session.
    pub async fn log_in(&self, username: &str, password: &str) -> Result<OpenedSession, AuthError> {
        let user = self.auth.check_password(username, password).await?;
        let token = random_token();
        let now = self.clock.now_micros();
        let lifetime = self.lifetime_seconds(user.role);
        self.store
            .create_web_session(&NewWebSession {
                id: self.clock.new_id(),
                token_hash: token_hash(&token),
                user_id: user.id,
                credentials_version: user.credentials_version,
                created_at: now,
                expires_at: now + lifetime * 1_000_000,
            })
            .await?;
        Ok(OpenedSession {
            token,
            max_age_seconds: lifetime,
            caller: Caller::from(&user),
        })
    }

    /// The user a session cookie belongs to, if the session is live; using it slides its
    /// expiry.
    pub async fn session_user(&self, token: &str) -> Result<Option<User>, StoreError> {
        let now = self.clock.now_micros();
        let Some(session) = self.store.live_web_session(&token_hash(token), now).await? else {
            return Ok(None);
        };
        if now - session.last_used_at > SLIDE_AFTER_MICROS {
            let expires_at = now + self.lifetime_seconds(session.user.role) * 1_000_000;
            self.store
                .extend_web_session(session.id, now, expires_at)
                .await?;
        }
        Ok(Some(session.user))
    }

    pub async fn log_out(&self, token: &str) -> Result<(), StoreError> {
        self.store
            .revoke_web_session(&token_hash(token), self.clock.now_micros())
            .await?;
        Ok(())
    }

    /// When no admin exists, a one-time setup token (the same one for the life of this
    /// process until it is used); `None` once an admin exists.
    pub async fn open_setup(&self) -> Result<Option<String>, StoreError> {
        if self.store.admin_exists().await? {
            return Ok(None);
        }
        let mut token = self.setup_token.lock().expect("setup token lock");
        Ok(Some(token.get_or_insert_with(random_token).clone()))
    }

    /// Whether `token` opens the setup page now.
    pub async fn setup_is_open(&self, token: &str) -> Result<bool, StoreError> {
        let matches = self.matches_setup_token(token);
        Ok(matches && !self.store.admin_exists().await?)
    }

    fn matches_setup_token(&self, token: &str) -> bool {
        is_setup_token(&self.setup_token.lock().expect("setup token lock"), token)
    }

    /// Creates the first admin with the setup token; the token is used up, so the page stops
    /// working. A refused username or password leaves the token usable for a second try.
    pub async fn complete_setup(
        &self,
        token: &str,
        username: &str,
        password: String,
    ) -> Result<User, SetupError> {
        // Taken out first: a second request racing this one finds no token.
        let taken = {
            let mut held = self.setup_token.lock().expect("setup token lock");
            if !is_setup_token(&held, token) {
                return Err(SetupError::Closed);
            }
            held.take().expect("a matching token is held")
        };
        if self.store.admin_exists().await.map_err(AuthError::from)? {
            return Err(SetupError::Closed);
        }
        match self
            .auth
            .create_user(
                &Caller::system("setup link"),
                username,
                Role::Admin,
                None,
                password,
            )
            .await
        {
            Ok(user) => Ok(user),
            Err(refused) => {
                *self.setup_token.lock().expect("setup token lock") = Some(taken);
                Err(refused.into())
            }
        }
    }
}
