//! The links the QM system downloads recordings from: `/qm/recordings/{call}.{ext}` with an
//! expiry and an HMAC over the call (its account, id and external id) and the expiry, so that
//! nobody can guess another call's link or stretch one's life, a link never opens a later call
//! that reuses a deleted call's id, and no account or session is needed to follow it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The call a link opens.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub account: i64,
    pub call: i64,
    pub external_id: &'a str,
}

fn mac(key: &[u8; 32], t: Target<'_>, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"qm-recording");
    mac.update(&t.account.to_be_bytes());
    mac.update(&t.call.to_be_bytes());
    mac.update(&expires.to_be_bytes());
    mac.update(t.external_id.as_bytes());
    mac
}

/// The link to a call's recording, working until `expires` (epoch seconds).
pub fn file_link(base_url: &str, key: &[u8; 32], t: Target<'_>, extension: &str, expires: i64) -> String {
    let signature = URL_SAFE_NO_PAD.encode(mac(key, t, expires).finalize().into_bytes());
    format!(
        "{base_url}/qm/recordings/{}.{extension}?expires={expires}&signature={signature}",
        t.call
    )
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not made by this server (or changed).
    Forged,
    Expired,
}

/// Checks a link's signature (in constant time) for the call now stored under its id, then its
/// expiry, as of `now` (epoch seconds).
pub fn verify(key: &[u8; 32], t: Target<'_>, expires: i64, signature: &str, now: i64) -> Result<(), LinkError> {
    let given = URL_SAFE_NO_PAD.decode(signature).map_err(|_| LinkError::Forged)?;
    mac(key, t, expires)
        .verify_slice(&given)
        .map_err(|_| LinkError::Forged)?;
    if now >= expires {
        return Err(LinkError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_open_until_they_expire_and_only_as_signed() {
        let key = [7u8; 32];
        let t = Target {
            account: 1,
            call: 42,
            external_id: "e-42",
        };
        let link = file_link("https://ct.example", &key, t, "wav", 2_000);
        let (path, query) = link.split_once('?').unwrap();
        assert_eq!(path, "https://ct.example/qm/recordings/42.wav");
        let signature = query.split("signature=").nth(1).unwrap();
        assert!(link.len() < crate::domain::qm::MAX_FILE_LINK_CHARS);
        assert_eq!(verify(&key, t, 2_000, signature, 1_999), Ok(()));
        assert_eq!(verify(&key, t, 2_000, signature, 2_000), Err(LinkError::Expired));
        let other = |account, call, external_id| Target {
            account,
            call,
            external_id,
        };
        for (changed, why) in [
            (other(1, 43, "e-42"), "another call"),
            (other(2, 42, "e-42"), "another account"),
            (other(1, 42, "e-43"), "a later call under a reused id"),
        ] {
            assert_eq!(
                verify(&key, changed, 2_000, signature, 1_000),
                Err(LinkError::Forged),
                "{why}"
            );
        }
        assert_eq!(
            verify(&key, t, 9_000, signature, 1_000),
            Err(LinkError::Forged),
            "a longer life"
        );
        assert_eq!(
            verify(&[8u8; 32], t, 2_000, signature, 1_000),
            Err(LinkError::Forged),
            "another key"
        );
        assert_eq!(verify(&key, t, 2_000, "not base64!", 1_000), Err(LinkError::Forged));
        // A forged link that has also expired says forged: expiry is only told to the link's owner.
        assert_eq!(verify(&key, t, 10, "AAAA", 1_000), Err(LinkError::Forged));
    }
}
