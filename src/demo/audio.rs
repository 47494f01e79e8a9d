//! Demo recordings: short stereo WAV files (operator left, customer right) in which two voices
//! take turns, so that the page has something real to play, seek and download.

use std::f64::consts::TAU;

/// Samples per second; telephony audio.
const RATE: u32 = 8_000;

/// A `seconds`-long two-voice conversation; `seed` varies who speaks when and in what pitch.
pub fn conversation(seconds: u32, seed: u64) -> Vec<u8> {
    let frames = (RATE * seconds) as usize;
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    // Turns: (first frame, last frame, speaker 0 = operator / 1 = customer, pitch).
    let mut turns = Vec::new();
    let mut at = (RATE as f64 * 0.4) as usize;
    let mut speaker = 0;
    while at < frames {
        let length = (RATE as f64 * (1.2 + next() * 3.0)) as usize;
        let pitch = if speaker == 0 {
            180.0 + next() * 40.0
        } else {
            110.0 + next() * 30.0
        };
        turns.push((at, (at + length).min(frames), speaker, pitch));
        at += length + (RATE as f64 * (0.2 + next() * 0.6)) as usize;
        speaker = 1 - speaker;
    }
    let mut pcm = vec![0i16; frames * 2];
    for (start, end, who, pitch) in turns {
        for i in start..end {
            let t = (i - start) as f64 / RATE as f64;
            let length = (end - start) as f64 / RATE as f64;
            // Syllables: a 4–5 Hz envelope inside a fade in and out of the whole turn.
            let fade = (t / 0.05).min(1.0) * ((length - t) / 0.05).clamp(0.0, 1.0);
            let syllables = 0.55 + 0.45 * (TAU * 4.5 * t).sin().abs();
            let glide = pitch * (1.0 + 0.06 * (TAU * 0.7 * t).sin());
            let voice = (1..=4)
                .map(|h| (TAU * glide * h as f64 * t).sin() / h as f64)
                .sum::<f64>();
            pcm[i * 2 + who] = (voice * fade * syllables * 6_000.0) as i16;
        }
    }
    wav(&pcm, 2)
}

/// A PCM WAV file of 16-bit samples.
fn wav(samples: &[i16], channels: u16) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wav_of_the_asked_length() {
        let file = super::conversation(3, 7);
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(&file[8..12], b"WAVE");
        // 3 s × 8000 frames × 2 channels × 2 bytes + the 44-byte header.
        assert_eq!(file.len(), 44 + 3 * 8_000 * 4);
        assert_eq!(u32::from_le_bytes([file[40], file[41], file[42], file[43]]), 96_000);
        assert!(file[44..].iter().any(|b| *b != 0), "it has sound");
        assert_eq!(crate::recording::sniff::sniff(&file[..12]), Some("audio/wav"));
    }
}
