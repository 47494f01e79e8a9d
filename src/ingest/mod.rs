//! Call records in: one module per source format, each turning its input into `CallPatch`es
//! for the store. `pbx` says what a PBX's records mean in our model; the PBX formats report what
//! they could not read by line and go on with the rest.

pub mod asterisk;
pub mod freeswitch;
pub mod import;
pub mod native;
pub mod pbx;
pub mod voximplant;

use crate::domain::CallPatch;

/// What one input (a file, a posted document) came to.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Patches in input order, each with the line it came from (the line a call ended on, for
    /// formats that spread a call over several lines).
    pub patches: Vec<(usize, CallPatch)>,
    /// What could not be read: nothing of it is stored, the rest is.
    pub rejected: Vec<Rejected>,
    /// Records read but not kept, by design (internal calls when so configured, conference
    /// summaries…).
    pub skipped: Vec<Rejected>,
}

/// A part of the input that was not taken, where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line; for a whole-document format, the line where reading failed.
    pub line: usize,
    pub reason: String,
}

impl Rejected {
    pub fn new(line: usize, reason: impl Into<String>) -> Rejected {
        Rejected {
            line,
            reason: reason.into(),
        }
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_at(text: &[u8], offset: usize) -> usize {
    1 + text[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count()
}

/// Cuts `text` to at most `max` bytes on a character boundary, for fields with a length limit.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The rows of a CSV file with the line each starts on. A row with an unterminated quote is an
/// error naming its line (the CSV reader would take the rest of the file into one field); blank
/// rows are left out.
pub fn csv_rows(text: &[u8]) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut rows = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    loop {
        let before = reader.position().clone();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = usize::try_from(before.line()).unwrap_or(0).max(1);
                rows.push((line, Err(format!("unreadable CSV: {e}"))));
                break;
            }
        }
        // The reader skips blank lines without counting them: the line is counted from the
        // record's first byte.
        let start = record.position().unwrap_or(&before).clone();
        let mut from = usize::try_from(start.byte()).unwrap_or(0).min(text.len());
        while from < text.len() && matches!(text[from], b'\r' | b'\n') {
            from += 1;
        }
        let line = line_at(text, from);
        let to = usize::try_from(reader.position().byte()).unwrap_or(text.len());
        let raw = &text[from.min(text.len())..to.min(text.len())];
        if raw.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
            rows.push((line, Err("a quoted value is not closed (the line is cut short)".into())));
            continue;
        }
        let values: Result<Vec<String>, _> = record
            .iter()
            .map(|v| std::str::from_utf8(v).map(str::to_string))
            .collect();
        match values {
            Ok(v) if v.iter().all(|v| v.trim().is_empty()) => {}
            Ok(v) => rows.push((line, Ok(v))),
            Err(_) => rows.push((line, Err("not UTF-8 text".into()))),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_rows_report_unclosed_quotes_by_line() {
        let rows = super::csv_rows(b"\"a\",1\n\n\"b\",2\n\"c\",\"3\n");
        let lines: Vec<_> = rows.iter().map(|(l, r)| (*l, r.is_ok())).collect();
        assert_eq!(lines, [(1, true), (3, true), (4, false)]);
        assert_eq!(rows[1].1.as_ref().unwrap(), &["b", "2"]);
    }
}
