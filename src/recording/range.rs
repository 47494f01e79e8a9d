//! HTTP `Range` requests on a file of known size (RFC 9110 §14): one byte range is served as
//! 206, a range past the end is 416, and anything else (other units, several ranges, a header
//! that does not parse) is ignored, as the RFC lets a server do, and the whole file is sent.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

pub fn answer(header: Option<&str>, size: u64) -> Answer {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return Answer::Whole;
    };
    if spec.contains(',') {
        return Answer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Answer::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                Answer::Unsatisfiable
            } else {
                Answer::Part(size.saturating_sub(n)..size)
            }
        }
        // `a-` and `a-b`.
        (false, Some(a), end) if last.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|b| b < a) {
                return Answer::Whole;
            }
            if a >= size {
                return Answer::Unsatisfiable;
            }
            let end = end.map_or(size, |b| b.saturating_add(1).min(size));
            Answer::Part(a..end)
        }
        _ => Answer::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_a_thousand_bytes() {
        let table = [
            (None, Answer::Whole),
            (Some("bytes=0-0"), Answer::Part(0..1)),
            (Some("bytes=0-99"), Answer::Part(0..100)),
            (Some("bytes=500-"), Answer::Part(500..1000)),
            (Some("bytes=400-599"), Answer::Part(400..600)),
            (Some("bytes=900-5000"), Answer::Part(900..1000)),
            (Some("bytes=-100"), Answer::Part(900..1000)),
            (Some("bytes=-5000"), Answer::Part(0..1000)),
            (Some("bytes=999-"), Answer::Part(999..1000)),
            (Some("bytes=1000-"), Answer::Unsatisfiable),
            (Some("bytes=1000-1200"), Answer::Unsatisfiable),
            (Some("bytes=-0"), Answer::Unsatisfiable),
            // Ignored: not bytes, several ranges, reversed, garbage.
            (Some("items=0-5"), Answer::Whole),
            (Some("bytes=0-5,10-20"), Answer::Whole),
            (Some("bytes=50-10"), Answer::Whole),
            (Some("bytes=abc"), Answer::Whole),
            (Some("bytes=1e3-"), Answer::Whole),
            (Some("bytes=-"), Answer::Whole),
        ];
        for (header, want) in table {
            assert_eq!(answer(header, 1000), want, "{header:?}");
        }
        assert_eq!(answer(Some("bytes=0-"), 0), Answer::Unsatisfiable);
    }
}
