//! CSV: UTF-8 with a byte-order mark (so Excel reads Cyrillic), RFC 4180 quoting, `;` or `,`.

use std::fmt::Write as _;

use super::{write_datetime, Cell, Layout};
use crate::domain::Lang;
use crate::store::export::{Names, Row};

/// Turns batches of calls into CSV bytes, the first batch preceded by the mark and the header.
pub struct CsvWriter {
    delimiter: u8,
    decimal_comma: bool,
}

impl CsvWriter {
    pub fn new(layout: &Layout, delimiter: u8) -> Self {
        CsvWriter {
            delimiter,
            // With `;` (the Russian Excel's list separator) Excel also expects a decimal comma.
            decimal_comma: delimiter == b';' && layout.lang == Lang::Ru,
        }
    }

    fn writer(&self, buf: Vec<u8>) -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(buf)
    }

    /// The byte-order mark and the header row.
    pub fn head(&self, layout: &Layout) -> Result<Vec<u8>, csv::Error> {
        let mut out = self.writer(b"\xEF\xBB\xBF".to_vec());
        out.write_record(layout.columns.iter().map(|c| layout.header(*c, true)))?;
        out.into_inner().map_err(|e| e.into_error().into())
    }

    /// One batch of rows, each field written straight from the row (no strings per row).
    pub fn rows(&self, layout: &Layout, names: &Names, calls: &[Row]) -> Result<Vec<u8>, csv::Error> {
        let mut out = self.writer(Vec::with_capacity(calls.len() * 160));
        let mut field = String::with_capacity(64);
        for call in calls {
            for cell in layout.row(call, names) {
                field.clear();
                match cell {
                    Cell::Empty => {}
                    Cell::Text(s) => {
                        if starts_a_formula(&s) {
                            field.push('\'');
                        }
                        field.push_str(&s);
                    }
                    Cell::Time(t) => write_datetime(&mut field, t),
                    Cell::Seconds(n) | Cell::Count(n) => {
                        let _ = write!(field, "{n}");
                    }
                    Cell::Money(e4) => self.money(&mut field, e4),
                    Cell::Recording(base, id) => {
                        let _ = write!(field, "{base}/api/v1/calls/{id}/recording");
                    }
                    Cell::Result { label, .. } => field.push_str(label),
                }
                out.write_field(&field)?;
            }
            out.write_record(None::<&[u8]>)?;
        }
        out.into_inner().map_err(|e| e.into_error().into())
    }

    /// Up to four decimals, at least two (1.25, 0.0125), from the stored ten-thousandths; a
    /// decimal comma where Excel expects one.
    fn money(&self, field: &mut String, e4: i64) {
        let sign = if e4 < 0 { "-" } else { "" };
        let (units, mut frac, mut digits) = (e4.unsigned_abs() / 10_000, e4.unsigned_abs() % 10_000, 4);
        while digits > 2 && frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let point = if self.decimal_comma { ',' } else { '.' };
        let _ = write!(field, "{sign}{units}{point}{frac:0digits$}");
    }
}

/// Whether a spreadsheet would read this text as a formula (`=…`, `@…`, `+…`, `-…`, a leading tab
/// or carriage return). Notes, tags and names come from people and telephony: written as they are,
/// `=HYPERLINK(…)` in a note would run when the file is opened. Such cells get a leading `'`, which
/// Excel shows as text. A phone number (`+74951112233`) is left alone.
fn starts_a_formula(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !s[1..].bytes().all(|b| b.is_ascii_digit() || b" ()-".contains(&b)) || s.len() == 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_two_to_four_decimals() {
        let dot = CsvWriter {
            delimiter: b',',
            decimal_comma: false,
        };
        let comma = CsvWriter {
            delimiter: b';',
            decimal_comma: true,
        };
        for (e4, text) in [
            (12_500, "1.25"),
            (125, "0.0125"),
            (120_000, "12.00"),
            (-15_000, "-1.50"),
            (0, "0.00"),
            (12_345, "1.2345"),
        ] {
            let mut field = String::new();
            dot.money(&mut field, e4);
            assert_eq!(field, text);
        }
        let mut field = String::new();
        comma.money(&mut field, 12_500);
        assert_eq!(field, "1,25");
    }

    #[test]
    fn text_that_would_run_as_a_formula_is_quoted_and_phone_numbers_are_not() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "@SUM(A1)",
            "+cmd",
            "-2+3",
            "\tx",
            "\rx",
            "+",
            "-",
        ] {
            assert!(starts_a_formula(formula), "{formula:?}");
        }
        for plain in ["+74951112233", "+7 (495) 111-22-33", "-100", "Перезвонить", "1,25", ""] {
            assert!(!starts_a_formula(plain), "{plain:?}");
        }
    }
}
