//! `mod_cdr_csv` rows. The columns are whatever the template says, each a channel variable; the
//! default is the module's `example` template. A first row of variable names is read as the
//! header.

use super::{Leg, Profile};
use crate::ingest::{csv_rows, Rejected};

/// The `example` template of `cdr_csv.conf.xml`.
pub const EXAMPLE_TEMPLATE: [&str; 15] = [
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
];

/// Reads every row; a row that cannot be read is rejected with its line, the others go on.
pub fn parse(text: &[u8], columns: Option<&[String]>) -> Vec<(usize, Result<Leg, Rejected>)> {
    let mut names: Vec<String> = match columns {
        Some(c) => c.to_vec(),
        None => EXAMPLE_TEMPLATE.map(String::from).to_vec(),
    };
    let mut legs = Vec::new();
    let mut first = true;
    for (line, record) in csv_rows(text) {
        let record = match record {
            Ok(r) => r,
            Err(why) => {
                legs.push((line, Err(Rejected::new(line, why))));
                continue;
            }
        };
        if std::mem::take(&mut first) && columns.is_none() && record.iter().any(|v| v == "uuid") {
            names = record.clone();
            continue;
        }
        if record.len() != names.len() {
            let why = format!(
                "{} columns where the template has {} ({})",
                record.len(),
                names.len(),
                names.join(",")
            );
            legs.push((line, Err(Rejected::new(line, why))));
            continue;
        }
        let mut leg = Leg {
            direction: Some("inbound".into()),
            ..Leg::default()
        };
        for (name, value) in names.iter().zip(record.iter()) {
            if !value.is_empty() {
                leg.variables.insert(name.clone(), value.to_string());
            }
        }
        let var = |k: &str| leg.variables.get(k).cloned();
        leg.profiles.push(Profile {
            index: 1,
            caller_id_name: var("caller_id_name"),
            caller_id_number: var("caller_id_number"),
            destination_number: var("destination_number"),
            context: var("context"),
            uuid: var("uuid"),
            ..Profile::default()
        });
        // The b-leg's uuid says the call was put through to somebody.
        if let Some(b) = var("bleg_uuid") {
            leg.variables.insert("bridge_uuid".into(), b);
        }
        legs.push((line, Ok(leg)));
    }
    legs
}
