//! What kind of audio a file is, from its first bytes: the telephony's `Content-Type` is often
//! missing or `application/octet-stream`, and sometimes wrong.

/// How many leading bytes `sniff` looks at.
pub const HEAD: usize = 12;

/// The audio type of a file that starts with `head`, if it is one we know.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"RIFF") && head.get(8..12) == Some(b"WAVE") {
        Some("audio/wav")
    } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        Some("audio/mpeg")
    } else if starts(b"OggS") {
        Some("audio/ogg")
    } else if starts(b"fLaC") {
        Some("audio/flac")
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("audio/webm")
    } else if head.get(4..8) == Some(b"ftyp") {
        Some("audio/mp4")
    } else if starts(b"#!AMR") {
        Some("audio/amr")
    } else {
        None
    }
}

/// The type to store for a file: what its bytes say, else what the sender declared when that is
/// an audio type. `Err` names what was wrong, for the sender.
pub fn decide(declared: Option<&str>, head: &[u8]) -> Result<String, String> {
    let declared = declared
        .map(|d| d.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    let plausible = match declared.as_deref() {
        None | Some("application/octet-stream" | "binary/octet-stream") => true,
        Some(d) => d.starts_with("audio/") || d == "video/webm" || d == "video/ogg" || d == "video/mp4",
    };
    if !plausible {
        return Err(format!("Content-Type {} is not audio", declared.unwrap_or_default()));
    }
    match (sniff(head), declared) {
        (Some(found), _) => Ok(found.to_string()),
        (None, Some(d)) if d.starts_with("audio/") => Ok(d),
        _ => Err("the file is not audio calltrail recognises (WAV, MP3, OGG, FLAC, WebM, MP4, AMR)".into()),
    }
}

/// The file extension for a stored type.
pub fn extension(content_type: &str) -> &'static str {
    match content_type {
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "audio/webm" => "webm",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "m4a",
        "audio/amr" => "amr",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_from_bytes_and_declarations() {
        let wav = b"RIFF\x24\x08\x00\x00WAVEfmt ";
        // (declared type, first bytes, the stored type or Err: refused)
        type Case<'a> = (Option<&'a str>, &'a [u8], Result<&'a str, ()>);
        let table: [Case; 11] = [
            (Some("audio/x-wav"), wav, Ok("audio/wav")),
            (None, wav, Ok("audio/wav")),
            (
                Some("application/octet-stream"),
                b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00",
                Ok("audio/mpeg"),
            ),
            (
                Some("audio/mpeg"),
                &[0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0],
                Ok("audio/mpeg"),
            ),
            (
                Some("audio/ogg; codecs=opus"),
                b"OggS\x00\x02\x00\x00\x00\x00\x00\x00",
                Ok("audio/ogg"),
            ),
            (None, b"\x00\x00\x00\x20ftypM4A ", Ok("audio/mp4")),
            // Declared audio that we cannot read is taken at its word.
            (
                Some("audio/gsm"),
                b"\xd8\x20\xa2\xe1\x5a\x50\x00\x49\x24\x92\x49\x24",
                Ok("audio/gsm"),
            ),
            // Not audio by declaration, whatever the bytes.
            (Some("text/html"), b"<html><body>", Err(())),
            (Some("image/png"), wav, Err(())),
            // Undeclared and unrecognised.
            (Some("application/octet-stream"), b"<html><body>", Err(())),
            (None, b"", Err(())),
        ];
        for (declared, head, want) in table {
            let got = decide(declared, head);
            match want {
                Ok(t) => assert_eq!(got.as_deref(), Ok(t), "{declared:?}"),
                Err(()) => assert!(got.is_err(), "{declared:?} {head:?} gave {got:?}"),
            }
        }
        assert_eq!(extension("audio/wav"), "wav");
        assert_eq!(extension("audio/gsm"), "bin");
    }
}
