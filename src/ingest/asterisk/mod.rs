//! Asterisk: CDR rows (`cdr_csv`'s `Master.csv`, `cdr_custom` layouts), channel event logs
//! (CEL) and the queue log.

pub mod cdr;
pub mod cel;
pub mod queue_log;

/// The endpoint a channel name stands for: `SIP/alice-00000000` → `alice`,
/// `PJSIP/101-0000002a` → `101`; `None` for a Local channel (a dialplan loop, not a phone).
pub fn endpoint(channel: &str) -> Option<String> {
    let (tech, rest) = channel.split_once('/')?;
    if tech.eq_ignore_ascii_case("local") || rest.is_empty() {
        return None;
    }
    // The channel's sequence number follows the last dash.
    let name = match rest.rsplit_once('-') {
        Some((name, seq)) if !name.is_empty() && seq.chars().all(|c| c.is_ascii_hexdigit()) => name,
        _ => rest,
    };
    let name = name.split('@').next().unwrap_or(name);
    Some(name.to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_from_channel_names() {
        use super::endpoint;
        assert_eq!(endpoint("SIP/alice-00000000").as_deref(), Some("alice"));
        assert_eq!(endpoint("PJSIP/101-0000002a").as_deref(), Some("101"));
        assert_eq!(endpoint("IAX2/bob-00000000").as_deref(), Some("bob"));
        assert_eq!(endpoint("Console/dsp").as_deref(), Some("dsp"));
        assert_eq!(endpoint("SIP/8007").as_deref(), Some("8007"));
        assert_eq!(endpoint("Local/member1@default-00000001;1"), None);
        assert_eq!(endpoint(""), None);
    }
}
