//! JSON input whose errors name the field at fault (`notes[0].at`, `role`), for every body the
//! API reads.

use serde::de::DeserializeOwned;

use crate::domain::FieldError;

/// Parses one JSON document; trailing data is an error.
pub fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." {
            field_in_message(&inner.to_string())
        } else {
            path
        };
        FieldError::new(field, inner.to_string())
    })?;
    de.end().map_err(|e| FieldError::new("body", e.to_string()))?;
    Ok(value)
}

/// serde reports unknown and missing fields at the level of their object; the field's name is
/// in the message between backticks.
fn field_in_message(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "body".to_string())
}
