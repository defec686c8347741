//! Secrets the service must read back (webhook feed secrets are HMAC keys, so they cannot be
//! hashed) are kept sealed at rest with XChaCha20-Poly1305: a random 24-byte nonce per value,
//! the value's owner as associated data (a sealed value copied onto another row does not open),
//! stored as base64 of nonce and ciphertext. Each sealed value is stored with the id of the key
//! that sealed it, so keys can be rotated: the current key seals, the previous ones only open.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    #[error("a sealing key is 32 bytes written as 64 hex digits or as base64")]
    InvalidKey,
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("does not open with key {0}: altered, or sealed for another record")]
    Undecryptable(String),
}

/// One 32-byte key and its id: the first 8 bytes of a SHA-256 of the key, as hex. The id
/// names the key in the database without revealing it.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({})", self.id)
    }
}

impl SealingKey {
    /// A key as configured: 64 hex digits, or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, SealingError> {
        let text = text.trim();
        let key: [u8; KEY_BYTES] = hex::decode(text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .or_else(|| BASE64.decode(text).ok()?.try_into().ok())
            .ok_or(SealingError::InvalidKey)?;
        let digest = Sha256::new()
            .chain_update(b"market-ledger sealing key id\0")
            .chain_update(key)
            .finalize();
        Ok(Self {
            id: hex::encode(&digest[..8]),
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current key, which seals, and the previous ones, which only open.
#[derive(Debug, Clone)]
pub struct SealingKeys {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

impl SealingKeys {
    pub fn new(current: SealingKey, previous: Vec<SealingKey>) -> Self {
        Self { current, previous }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// `value` sealed under the current key for `owner`: base64 of nonce and ciphertext.
    pub fn seal(&self, value: &str, owner: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: value.as_bytes(),
            aad: owner,
        };
        let ciphertext = self
            .current
            .cipher
            .encrypt(&nonce, payload)
            .expect("XChaCha20-Poly1305 seals any value under 256 GiB");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        BASE64.encode(sealed)
    }

    /// The value `sealed` holds, sealed by the key `key_id` names for `owner`.
    pub fn open(&self, key_id: &str, sealed: &str, owner: &[u8]) -> Result<String, SealingError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| SealingError::UnknownKey(key_id.to_owned()))?;
        let undecryptable = || SealingError::Undecryptable(key_id.to_owned());
        let bytes = BASE64.decode(sealed).map_err(|_| undecryptable())?;
        if bytes.len() < NONCE_BYTES {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: owner,
        };
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| undecryptable())?;
        String::from_utf8(plain).map_err(|_| undecryptable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key(byte: u8) -> SealingKey {
        SealingKey::parse(&hex::encode([byte; 32])).unwrap()
    }

    #[test]
    fn keys_are_hex_or_base64_of_32_bytes_and_named_by_a_fingerprint() {
        let from_hex = SealingKey::parse(HEX_KEY).unwrap();
        let from_base64 = SealingKey::parse(&BASE64.encode(hex::decode(HEX_KEY).unwrap())).unwrap();
        assert_eq!(from_hex.id(), from_base64.id());
        assert_eq!(from_hex.id().len(), 16);
        assert!(!HEX_KEY.contains(from_hex.id()));
        assert_ne!(key(1).id(), key(2).id());
        for bad in [
            "",
            "00",
            &HEX_KEY[2..],
            "not a key at all",
            &BASE64.encode([7u8; 31]),
        ] {
            assert_eq!(
                SealingKey::parse(bad).unwrap_err(),
                SealingError::InvalidKey,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_owner() {
        let keys = SealingKeys::new(key(1), vec![]);
        let sealed = keys.seal("whsec_the feed secret", b"account-1");
        assert!(!sealed.contains("feed secret"));
        assert_ne!(
            keys.seal("whsec_the feed secret", b"account-1"),
            sealed,
            "fresh nonce"
        );
        assert_eq!(
            keys.open(keys.current_id(), &sealed, b"account-1").unwrap(),
            "whsec_the feed secret"
        );
        let undecryptable = SealingError::Undecryptable(keys.current_id().to_owned());
        assert_eq!(
            keys.open(keys.current_id(), &sealed, b"account-2"),
            Err(undecryptable.clone())
        );
        let mut altered = BASE64.decode(&sealed).unwrap();
        *altered.last_mut().unwrap() ^= 1;
        let altered = BASE64.encode(altered);
        assert_eq!(
            keys.open(keys.current_id(), &altered, b"account-1"),
            Err(undecryptable)
        );
        let other = SealingKeys::new(key(2), vec![]);
        assert_eq!(
            other.open(keys.current_id(), &sealed, b"account-1"),
            Err(SealingError::UnknownKey(keys.current_id().to_owned()))
        );
    }

    #[test]
    fn after_rotation_previous_keys_open_and_the_new_one_seals() {
        let before = SealingKeys::new(key(1), vec![]);
        let sealed = before.seal("secret", b"owner");
        let after = SealingKeys::new(key(2), vec![key(1)]);
        assert_eq!(
            after.open(before.current_id(), &sealed, b"owner").unwrap(),
            "secret"
        );
        let resealed = after.seal("secret", b"owner");
        assert_eq!(
            after.open(after.current_id(), &resealed, b"owner").unwrap(),
            "secret"
        );
        assert!(before
            .open(after.current_id(), &resealed, b"owner")
            .is_err());
    }

    #[test]
    fn the_debug_form_shows_the_key_id_only() {
        let shown = format!("{:?}", SealingKeys::new(key(0xab), vec![]));
        assert!(shown.contains(key(0xab).id()));
        assert!(!shown.contains("abab"), "{shown}");
    }
}
