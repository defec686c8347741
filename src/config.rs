//! Settings: built-in defaults, then an optional TOML file, then environment variables.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::sealing::SealingKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://path` (the default, embedded) or `postgres://...`.
    pub database_url: String,
    pub listen: String,
    /// Where generated secrets (the JWT key file) live. The SQLite file is wherever
    /// `database_url` points.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub db_max_connections: u32,
    pub max_body_bytes: usize,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_ttl_seconds: u64,
    /// `kid:base64secret` pairs separated by commas; the first signs, all verify (rotation).
    /// When empty, a key is generated into `data_dir/jwt-keys.json` on first start.
    pub jwt_keys: String,
    pub login_max_failures: i64,
    pub login_window_seconds: i64,
    /// Published statistics hide any cell counting fewer people than this (k).
    pub statistics_min_count: u64,
    /// The commune's target share of residents paying online, in percent.
    pub adoption_target_percent: u32,
    /// The secret key of payer-account hashes (HMAC-SHA256 over `bin:account number`), at
    /// least 16 bytes of text. When empty, 32 random bytes (as hex) are generated into
    /// `data_dir/payer-pepper` on first start. Changing it makes every stored payer hash
    /// unmatchable: keep it with the database's backups.
    pub pepper: String,
    /// The key that seals webhook feed secrets at rest: 32 bytes as 64 hex digits or base64.
    /// When empty, one is generated into `data_dir/secret-key` on first start. Keep it with
    /// the database's backups: without it the feed secrets must be set again.
    pub secret_key: String,
    /// Keys that sealed feed secrets before `secret_key` replaced them, comma-separated: they
    /// only open. On start (and `market-ledger migrate`) every secret is sealed again under
    /// `secret_key`, after which these can be removed.
    pub previous_secret_keys: String,
    /// A web app session of a vendor or school user lasts this long since it was last used
    /// (a market day on the stall's phone).
    pub web_session_payee_seconds: i64,
    /// A web app session of anyone else lasts this long since it was last used.
    pub web_session_seconds: i64,
    /// How school reminders are delivered: `log` (written to the log) or `http` (a signed
    /// JSON POST to `reminder_url`, the school's SMS or Zalo gateway).
    pub reminder_notifier: String,
    pub reminder_url: String,
    /// The HMAC-SHA256 key signing each reminder POST, at least 16 bytes of text.
    pub reminder_secret: String,
    /// How long one POST to the gateway may take.
    pub reminder_timeout_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/market-ledger.db".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            db_max_connections: 16,
            max_body_bytes: 2 * 1024 * 1024,
            jwt_issuer: "market-ledger".into(),
            jwt_audience: "market-ledger-api".into(),
            jwt_ttl_seconds: 900,
            jwt_keys: String::new(),
            login_max_failures: 5,
            login_window_seconds: 900,
            statistics_min_count: 5,
            adoption_target_percent: 50,
            pepper: String::new(),
            secret_key: String::new(),
            previous_secret_keys: String::new(),
            web_session_payee_seconds: 12 * 3600,
            web_session_seconds: 3600,
            reminder_notifier: "log".into(),
            reminder_url: String::new(),
            reminder_secret: String::new(),
            reminder_timeout_seconds: 10,
        }
    }
}

/// Environment variables and the setting each one overrides.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("MARKET_LEDGER_LISTEN", "listen"),
    ("MARKET_LEDGER_DATA_DIR", "data_dir"),
    ("MARKET_LEDGER_LOG_FORMAT", "log_format"),
    ("MARKET_LEDGER_LOG", "log_filter"),
    ("MARKET_LEDGER_DB_MAX_CONNECTIONS", "db_max_connections"),
    ("MARKET_LEDGER_MAX_BODY_BYTES", "max_body_bytes"),
    ("MARKET_LEDGER_JWT_ISSUER", "jwt_issuer"),
    ("MARKET_LEDGER_JWT_AUDIENCE", "jwt_audience"),
    ("MARKET_LEDGER_JWT_TTL_SECONDS", "jwt_ttl_seconds"),
    ("MARKET_LEDGER_JWT_KEYS", "jwt_keys"),
    ("MARKET_LEDGER_LOGIN_MAX_FAILURES", "login_max_failures"),
    ("MARKET_LEDGER_LOGIN_WINDOW_SECONDS", "login_window_seconds"),
    ("MARKET_LEDGER_STATISTICS_MIN_COUNT", "statistics_min_count"),
    (
        "MARKET_LEDGER_ADOPTION_TARGET_PERCENT",
        "adoption_target_percent",
    ),
    ("MARKET_LEDGER_PEPPER", "pepper"),
    ("MARKET_LEDGER_SECRET_KEY", "secret_key"),
    ("MARKET_LEDGER_PREVIOUS_SECRET_KEYS", "previous_secret_keys"),
    (
        "MARKET_LEDGER_WEB_SESSION_PAYEE_SECONDS",
        "web_session_payee_seconds",
    ),
    ("MARKET_LEDGER_WEB_SESSION_SECONDS", "web_session_seconds"),
    ("MARKET_LEDGER_REMINDER_NOTIFIER", "reminder_notifier"),
    ("MARKET_LEDGER_REMINDER_URL", "reminder_url"),
    ("MARKET_LEDGER_REMINDER_SECRET", "reminder_secret"),
    (
        "MARKET_LEDGER_REMINDER_TIMEOUT_SECONDS",
        "reminder_timeout_seconds",
    ),
];

/// Settings that are numbers; every other environment value is taken as text.
const NUMERIC_KEYS: &[&str] = &[
    "db_max_connections",
    "max_body_bytes",
    "jwt_ttl_seconds",
    "login_max_failures",
    "login_window_seconds",
    "statistics_min_count",
    "adoption_target_percent",
    "web_session_payee_seconds",
    "web_session_seconds",
    "reminder_timeout_seconds",
];

/// Access tokens live at most this long.
pub const MAX_TOKEN_TTL_SECONDS: u64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads settings from `file` (if given) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, |name| std::env::var(name).ok())
    }

    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (variable, key) in ENVIRONMENT {
            if let Some(value) = env(variable) {
                let value = match value.parse::<i64>() {
                    Ok(number) if NUMERIC_KEYS.contains(key) => toml::Value::Integer(number),
                    _ => toml::Value::String(value),
                };
                table.insert((*key).to_owned(), value);
            }
        }
        let settings: Settings = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.jwt_ttl_seconds == 0 || self.jwt_ttl_seconds > MAX_TOKEN_TTL_SECONDS {
            return Err(ConfigError::Invalid(format!(
                "jwt_ttl_seconds must be 1 to {MAX_TOKEN_TTL_SECONDS}"
            )));
        }
        if self.db_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "db_max_connections must be positive".into(),
            ));
        }
        if self.login_max_failures < 1 || self.login_window_seconds < 1 {
            return Err(ConfigError::Invalid(
                "login_max_failures and login_window_seconds must be positive".into(),
            ));
        }
        if self.statistics_min_count < 2 {
            return Err(ConfigError::Invalid(
                "statistics_min_count must be at least 2".into(),
            ));
        }
        if !(1..=100).contains(&self.adoption_target_percent) {
            return Err(ConfigError::Invalid(
                "adoption_target_percent must be 1 to 100".into(),
            ));
        }
        if self.web_session_payee_seconds < 60 || self.web_session_seconds < 60 {
            return Err(ConfigError::Invalid(
                "web_session_payee_seconds and web_session_seconds must be at least 60".into(),
            ));
        }
        if !self.pepper.trim().is_empty() {
            crate::domain::payer::Pepper::new(&self.pepper)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        self.validate_reminders()?;
        self.previous_sealing_keys()?;
        if !self.secret_key.trim().is_empty() {
            SealingKey::parse(&self.secret_key)
                .map_err(|e| ConfigError::Invalid(format!("secret_key: {e}")))?;
        }
        Ok(())
    }

    fn validate_reminders(&self) -> Result<(), ConfigError> {
        if !(1..=60).contains(&self.reminder_timeout_seconds) {
            return Err(ConfigError::Invalid(
                "reminder_timeout_seconds must be 1 to 60".into(),
            ));
        }
        match self.reminder_notifier.as_str() {
            "log" => Ok(()),
            "http" => {
                if !(self.reminder_url.starts_with("http://")
                    || self.reminder_url.starts_with("https://"))
                {
                    return Err(ConfigError::Invalid(
                        "reminder_notifier http needs reminder_url, an http:// or https:// URL"
                            .into(),
                    ));
                }
                if self.reminder_secret.len() < 16 {
                    return Err(ConfigError::Invalid(
                        "reminder_notifier http needs reminder_secret of at least 16 bytes".into(),
                    ));
                }
                Ok(())
            }
            other => Err(ConfigError::Invalid(format!(
                "reminder_notifier must be log or http, not {other:?}"
            ))),
        }
    }

    /// The keys of `previous_secret_keys`.
    pub fn previous_sealing_keys(&self) -> Result<Vec<SealingKey>, ConfigError> {
        self.previous_secret_keys
            .split(',')
            .filter(|key| !key.trim().is_empty())
            .map(|key| {
                SealingKey::parse(key)
                    .map_err(|e| ConfigError::Invalid(format!("previous_secret_keys: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("market-ledger.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\njwt_ttl_seconds = 600\n").unwrap();
        let env = |name: &str| match name {
            "MARKET_LEDGER_JWT_TTL_SECONDS" => Some("300".to_owned()),
            "DATABASE_URL" => Some("postgres://localhost/ledger".to_owned()),
            "MARKET_LEDGER_JWT_ISSUER" => Some("2024".to_owned()),
            _ => None,
        };
        let settings = Settings::load_from(Some(&file), env).unwrap();
        assert_eq!(settings.listen, "0.0.0.0:9000");
        assert_eq!(settings.jwt_ttl_seconds, 300);
        assert_eq!(settings.database_url, "postgres://localhost/ledger");
        assert_eq!(settings.log_format, LogFormat::Text);
        assert_eq!(settings.jwt_issuer, "2024");
    }

    #[test]
    fn the_pepper_comes_from_the_environment_and_must_be_long_enough() {
        let env = |value: &'static str| {
            move |name: &str| (name == "MARKET_LEDGER_PEPPER").then(|| value.to_owned())
        };
        let settings =
            Settings::load_from(None, env("a pepper of at least sixteen bytes")).unwrap();
        assert_eq!(settings.pepper, "a pepper of at least sixteen bytes");
        assert!(Settings::load_from(None, env("short")).is_err());
        // Empty: generated into the data directory at start-up.
        assert_eq!(Settings::load_from(None, |_| None).unwrap().pepper, "");
    }

    #[test]
    fn sealing_keys_come_from_the_environment_and_must_be_32_bytes() {
        let key = "ab".repeat(32);
        let env = |current: String, previous: &'static str| {
            move |name: &str| match name {
                "MARKET_LEDGER_SECRET_KEY" => Some(current.clone()),
                "MARKET_LEDGER_PREVIOUS_SECRET_KEYS" => Some(previous.to_owned()),
                _ => None,
            }
        };
        let previous = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, ";
        let settings = Settings::load_from(None, env(key.clone(), previous)).unwrap();
        assert_eq!(settings.secret_key, key);
        assert_eq!(settings.previous_sealing_keys().unwrap().len(), 1);
        for (current, previous) in [("ab".repeat(31), ""), (key, "not a key")] {
            let error = Settings::load_from(None, env(current, previous)).unwrap_err();
            assert!(error.to_string().contains("32 bytes"), "{error}");
        }
    }

    #[test]
    fn an_http_reminder_notifier_needs_a_url_and_a_long_secret() {
        let env = |values: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                values
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let settings = Settings::load_from(None, |_| None).unwrap();
        assert_eq!(settings.reminder_notifier, "log");
        const HTTP: &[(&str, &str)] = &[
            ("MARKET_LEDGER_REMINDER_NOTIFIER", "http"),
            (
                "MARKET_LEDGER_REMINDER_URL",
                "https://sms.example/reminders",
            ),
            ("MARKET_LEDGER_REMINDER_SECRET", "sixteen bytes at least"),
        ];
        let settings = Settings::load_from(None, env(HTTP)).unwrap();
        assert_eq!(settings.reminder_url, "https://sms.example/reminders");
        assert!(Settings::load_from(None, env(&HTTP[..2])).is_err());
        assert!(
            Settings::load_from(None, env(&[("MARKET_LEDGER_REMINDER_NOTIFIER", "zalo")])).is_err()
        );
    }

    #[test]
    fn rejects_long_lived_tokens_and_unknown_keys() {
        let env = |name: &str| (name == "MARKET_LEDGER_JWT_TTL_SECONDS").then(|| "3600".into());
        assert!(Settings::load_from(None, env).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "lisen = \"typo\"\n").unwrap();
        assert!(Settings::load_from(Some(&file), |_| None).is_err());
    }
}
