//! calltrail's own format: a JSON array of call records, or NDJSON (one record per line).
//! Every record is parsed and checked before anything is stored; the first bad one rejects the
//! batch, named by its index and field.

use serde_json::value::RawValue;

use crate::domain::{CallPatch, FieldError};

/// A record that could not be read, with its index in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub index: Option<usize>,
    pub error: FieldError,
}

/// Parses a JSON body: an array of records, or a single record object.
pub fn parse_json(body: &[u8]) -> Result<Vec<CallPatch>, RecordError> {
    // The fast path: a well-formed batch is read in one pass. Only a batch that fails is read
    // again record by record, to name the record and field at fault.
    if let Ok(patches) = serde_json::from_slice::<Vec<CallPatch>>(body) {
        return validated(patches);
    }
    parse_json_slowly(body)
}

fn validated(patches: Vec<CallPatch>) -> Result<Vec<CallPatch>, RecordError> {
    for (index, p) in patches.iter().enumerate() {
        p.validate().map_err(|e| RecordError {
            index: Some(index),
            error: FieldError::new(e.field, format!("record {index}: {}", e.message)),
        })?;
    }
    Ok(patches)
}

fn parse_json_slowly(body: &[u8]) -> Result<Vec<CallPatch>, RecordError> {
    let whole = |e: serde_json::Error| RecordError {
        index: None,
        error: FieldError::new("body", format!("malformed JSON: {e}")),
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let raws: Vec<&RawValue> = match first {
        Some(b'[') => serde_json::from_slice(body).map_err(whole)?,
        Some(b'{') => vec![serde_json::from_slice(body).map_err(whole)?],
        _ => {
            return Err(RecordError {
                index: None,
                error: FieldError::new("body", "expected a JSON array of call records"),
            })
        }
    };
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| parse_record(i, raw.get()))
        .collect()
}

/// Parses NDJSON: one record per non-empty line.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<CallPatch>, RecordError> {
    let text = std::str::from_utf8(body).map_err(|_| RecordError {
        index: None,
        error: FieldError::new("body", "NDJSON must be UTF-8"),
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| parse_record(i, line))
        .collect()
}

/// Parses and checks one record; errors name the JSON path of the field (`notes[0].at`).
pub fn parse_record(index: usize, json: &str) -> Result<CallPatch, RecordError> {
    let fail = |field: String, message: String| RecordError {
        index: Some(index),
        error: FieldError::new(field, message),
    };
    let patch: CallPatch = crate::json::parse(json.as_bytes()).map_err(|e| {
        // A syntax error or a misplaced field is reported for the record as a whole.
        let field = if e.field == "body" {
            "record".to_string()
        } else {
            e.field
        };
        fail(field, format!("record {index}: {}", e.message))
    })?;
    patch
        .validate()
        .map_err(|e| fail(e.field, format!("record {index}: {}", e.message)))?;
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_index_and_field() {
        let body = br#"[{"external_id":"a"},{"external_id":"b","kind":"outbound"}]"#;
        let e = parse_json(body).unwrap_err();
        assert_eq!((e.index, e.error.field.as_str()), (Some(1), "kind"));

        let e = parse_json(br#"[{"external_id":"a","notes":[{"id":"n","at":"bad","text":"x"}]}]"#).unwrap_err();
        assert_eq!(e.error.field, "notes[0].at");

        let e = parse_json(br#"[{"kind":"incoming"}]"#).unwrap_err();
        assert_eq!(e.error.field, "external_id");

        let e = parse_json(br#"[{"external_id":"a","colour":"red"}]"#).unwrap_err();
        assert_eq!(e.error.field, "colour");

        let e = parse_json(b"[{\"external_id\":").unwrap_err();
        assert_eq!((e.index, e.error.field.as_str()), (None, "body"));
    }

    #[test]
    fn ndjson_lines_are_records() {
        let items = parse_ndjson(b"{\"external_id\":\"a\"}\n\n{\"external_id\":\"b\"}\n").unwrap();
        assert_eq!(items.len(), 2);
        let e = parse_ndjson(b"{\"external_id\":\"a\"}\n{\"external_id\":5}\n").unwrap_err();
        assert_eq!((e.index, e.error.field.as_str()), (Some(1), "external_id"));
    }
}
