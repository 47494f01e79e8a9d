//! Search cursors: the key of the last call of a page, signed together with the search it belongs
//! to, so that a forged cursor, or one from another search, is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::FieldError;

type HmacSha256 = Hmac<Sha256>;

fn cursor_mac(key: &[u8; 32], started_at: i64, id: i64, fingerprint: &str) -> [u8; 16] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&started_at.to_be_bytes());
    mac.update(&id.to_be_bytes());
    mac.update(fingerprint.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// A cursor names the last call of a page, signed together with the search it belongs to.
pub fn encode_cursor(key: &[u8; 32], started_at: i64, id: i64, fingerprint: &str) -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&started_at.to_be_bytes());
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&cursor_mac(key, started_at, id, fingerprint));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a cursor back; a forged one, or one from another search, is a field error.
pub fn decode_cursor(key: &[u8; 32], cursor: &str, fingerprint: &str) -> Result<(i64, i64), FieldError> {
    let bad = || {
        FieldError::new(
            "cursor",
            "cursor is not valid for this search; start again from the first page",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    if bytes.len() != 32 {
        return Err(bad());
    }
    let started_at = i64::from_be_bytes(bytes[0..8].try_into().map_err(|_| bad())?);
    let id = i64::from_be_bytes(bytes[8..16].try_into().map_err(|_| bad())?);
    let expected = cursor_mac(key, started_at, id, fingerprint);
    // Constant-time comparison of the tag.
    let diff = expected
        .iter()
        .zip(&bytes[16..32])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(bad());
    }
    Ok((started_at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgery() {
        let key = [7u8; 32];
        let c = encode_cursor(&key, 1_700_000_000_000, 42, "operator=1");
        assert_eq!(decode_cursor(&key, &c, "operator=1"), Ok((1_700_000_000_000, 42)));
        assert_eq!(decode_cursor(&key, &c, "operator=2").unwrap_err().field, "cursor");
        assert_eq!(decode_cursor(&[8u8; 32], &c, "operator=1").unwrap_err().field, "cursor");
        let mut bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        bytes[15] ^= 1; // a different call id, same signature
        assert!(decode_cursor(&key, &URL_SAFE_NO_PAD.encode(bytes), "operator=1").is_err());
        assert!(decode_cursor(&key, "not a cursor!", "").is_err());
    }
}
