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
}
