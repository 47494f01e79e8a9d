//! Passwords, tokens and the hashes we keep instead of them.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::FieldError;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

pub fn check_password_rules(field: &str, password: &str) -> Result<(), FieldError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&n) {
        return Err(FieldError::new(
            field,
            format!("passwords are {MIN_PASSWORD_CHARS} to 1024 characters"),
        ));
    }
    Ok(())
}

/// Argon2 takes ~19 MiB and tens of milliseconds per hash: at most this many run at once, so
/// a burst of sign-ins queues instead of exhausting memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `hash_password` off the async threads, within the hashing limit.
pub async fn hash_password_queued(password: String) -> Result<String, String> {
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// `verify_password` off the async threads, within the hashing limit.
pub async fn verify_password_queued(password: String, hash: Option<String>) -> Result<bool, String> {
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .map_err(|e| e.to_string())
}

/// An argon2id hash in PHC format, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes)?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Checks a password against a stored hash. With no hash (unknown login) the same work is done
/// against a throw-away hash, so the answer's timing does not tell which logins exist.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default());
    let (stored, real) = match hash {
        Some(h) => (h, true),
        None => (decoy.as_str(), false),
    };
    let ok = PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false);
    ok && real
}

/// 256 random bits, URL-safe, with a recognisable prefix (`ct_` API tokens, `cs_` sessions).
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token: what the database keeps instead of the token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The server's secret key: it seals secrets the database keeps for later use (the QM system's
/// API key), so that a copy of the database alone does not give them away. From `--secret-key`,
/// else the file `secret.key` in the data folder, created on first start, readable by its owner.
#[derive(Clone)]
pub struct SealingKey([u8; 32]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// A sealed value that cannot be opened: another key sealed it, or it was changed.
#[derive(Debug, thiserror::Error)]
#[error("the stored secret cannot be read with this server's secret key (was the key changed?)")]
pub struct Unsealable;

const SEALED_PREFIX: &str = "v1.";

impl SealingKey {
    /// 32 bytes as 64 hex digits or as base64.
    pub fn parse(text: &str) -> Result<SealingKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| e.to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| "expected 32 bytes as 64 hex digits or base64".to_string())?
        };
        <[u8; 32]>::try_from(bytes)
            .map(SealingKey)
            .map_err(|b| format!("expected 32 bytes, got {}", b.len()))
    }

    /// A fresh random key (tests, and the first start).
    pub fn random() -> SealingKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SealingKey(key)
    }

    /// The key in `path`, or a new one written there (owner-only) when the file does not exist.
    pub fn load_or_create(path: &std::path::Path) -> Result<SealingKey, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => return SealingKey::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let key = SealingKey::random();
        let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(path).and_then(|mut f| {
            use std::io::Write;
            f.write_all(format!("{hex}\n").as_bytes())?;
            f.sync_all()
        });
        written.map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(key)
    }

    /// A key for another purpose (signing links), derived so that one secret serves both.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn aead(&self) -> ring::aead::LessSafeKey {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &self.0)
            .expect("a 32-byte key is what ChaCha20-Poly1305 takes");
        ring::aead::LessSafeKey::new(unbound)
    }

    /// `plain` sealed (ChaCha20-Poly1305, random nonce) and bound to `context`, so that a
    /// sealed value copied to another row (another account) does not open there.
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = plain.as_bytes().to_vec();
        self.aead()
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(context.as_bytes()),
                &mut data,
            )
            .expect("sealing a short secret does not fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, Unsealable> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or(Unsealable)?;
        if bytes.len() < 12 {
            return Err(Unsealable);
        }
        let (nonce, data) = bytes.split_at(12);
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable)?;
        let mut data = data.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, ring::aead::Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| Unsealable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("correct hors", Some(&h)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a hash")));
        assert!(check_password_rules("password", "1234567").is_err());
        assert!(check_password_rules("password", "12345678").is_ok());
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let key = SealingKey::random();
        let sealed = key.seal("qm-api-key-123", "qm:1");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("qm-api-key-123"));
        assert_ne!(sealed, key.seal("qm-api-key-123", "qm:1"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed, "qm:1").unwrap(), "qm-api-key-123");
        assert!(key.open(&sealed, "qm:2").is_err(), "bound to its context");
        assert!(SealingKey::random().open(&sealed, "qm:1").is_err(), "bound to its key");
        let mut forged = sealed.clone();
        forged.push('A');
        assert!(key.open(&forged, "qm:1").is_err());
        assert!(key.open("v1.", "qm:1").is_err());
        assert!(key.open("plain", "qm:1").is_err());

        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let parsed = SealingKey::parse(hex).unwrap();
        assert_eq!(parsed.0[1], 0x11);
        assert_eq!(
            SealingKey::parse(&base64::engine::general_purpose::STANDARD.encode(parsed.0))
                .unwrap()
                .0,
            parsed.0
        );
        assert!(SealingKey::parse("short").is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let made = SealingKey::load_or_create(&path).unwrap();
        assert_eq!(
            SealingKey::load_or_create(&path).unwrap().0,
            made.0,
            "read back, not replaced"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
