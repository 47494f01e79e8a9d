//! Call records in: one module per source format, each turning its input into `CallPatch`es
//! for the store. `pbx` says what a PBX's records mean in our model; the PBX formats report what
//! they could not read by line and go on with the rest.

pub mod asterisk;
pub mod follow;
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
/// error naming its line, and reading goes on at the next line (the CSV reader alone would take
/// the rest of the file into that one field); blank rows are left out.
pub fn csv_rows(text: &[u8]) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut rows = Vec::new();
    let mut lines = Lines::default();
    let mut from = 0;
    while from < text.len() {
        from = csv_rows_from(text, from, &mut lines, &mut rows);
    }
    rows
}

/// Line numbers of offsets met in increasing order, counted once through the text (counting
/// from the start for every row made a 200,000-row file take minutes).
#[derive(Default)]
struct Lines {
    offset: usize,
    line: usize,
}

impl Lines {
    fn at(&mut self, text: &[u8], offset: usize) -> usize {
        let offset = offset.min(text.len());
        if offset < self.offset {
            return line_at(text, offset);
        }
        self.line += text[self.offset..offset].iter().filter(|&&b| b == b'\n').count();
        self.offset = offset;
        self.line + 1
    }
}

/// Reads rows from byte `start` until the end, or until a row with an unterminated quote:
/// then answers where reading starts again (the line after that row's first line).
fn csv_rows_from(
    text: &[u8],
    start: usize,
    lines: &mut Lines,
    rows: &mut Vec<(usize, Result<Vec<String>, String>)>,
) -> usize {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&text[start..]);
    let mut record = ::csv::ByteRecord::new();
    loop {
        let before = reader.position().clone();
        match reader.read_byte_record(&mut record) {
            Ok(false) => return text.len(),
            Ok(true) => {}
            Err(e) => {
                let at = start + usize::try_from(before.byte()).unwrap_or(0);
                rows.push((lines.at(text, at), Err(format!("unreadable CSV: {e}"))));
                return text.len();
            }
        }
        // The reader skips blank lines without counting them: the line is counted from the
        // record's first byte.
        let pos = record.position().unwrap_or(&before).clone();
        let mut from = (start + usize::try_from(pos.byte()).unwrap_or(0)).min(text.len());
        while from < text.len() && matches!(text[from], b'\r' | b'\n') {
            from += 1;
        }
        let line = lines.at(text, from);
        let to = (start + usize::try_from(reader.position().byte()).unwrap_or(text.len())).min(text.len());
        let raw = &text[from..to.max(from)];
        if raw.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
            rows.push((line, Err("a quoted value is not closed (the line is cut short)".into())));
            return text[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |nl| from + nl + 1);
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_rows_report_unclosed_quotes_by_line() {
        let rows = super::csv_rows(b"\"a\",1\n\n\"b\",2\n\"c\",\"3\n\"d\",4\n\"e\",\"multi\nline\"\n");
        let lines: Vec<_> = rows.iter().map(|(l, r)| (*l, r.is_ok())).collect();
        // The broken line 4 does not take lines 5 and 6 with it; a quoted value may span lines.
        assert_eq!(lines, [(1, true), (3, true), (4, false), (5, true), (6, true)]);
        assert_eq!(rows[4].1.as_ref().unwrap(), &["e", "multi\nline"]);
        assert_eq!(rows[1].1.as_ref().unwrap(), &["b", "2"]);
    }
}
