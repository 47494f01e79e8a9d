//! `mod_xml_cdr` documents: `<cdr>` with `<variables>`, `<app_log>` and repeated `<callflow>`;
//! 2008-era documents lack `core-uuid` and `<channel_data>`, conference summaries hold
//! `<conference>` instead.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{decode, App, Leg, Profile};
use crate::ingest::{line_at, Rejected};

/// An element of the document: what the reader needs of it.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The text of a child, URL-decoded and trimmed (old documents wrap values in newlines).
    fn value(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|c| decode(c.text.trim()))
            .filter(|v| !v.is_empty())
    }
}

fn read_tree(text: &[u8]) -> Result<Element, Rejected> {
    let fail = |offset: u64, what: String| {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        Rejected::new(line_at(text, offset), format!("not a mod_xml_cdr document: {what}"))
    };
    let source = std::str::from_utf8(text).map_err(|e| fail(e.valid_up_to() as u64, "not UTF-8".into()))?;
    let mut reader = Reader::from_str(source);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| fail(reader.error_position(), e.to_string()))?;
        let open = |e: &quick_xml::events::BytesStart| -> Result<Element, String> {
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let mut attributes = Vec::new();
            for a in e.attributes() {
                let a = a.map_err(|e| e.to_string())?;
                let value = a.unescape_value().map_err(|e| e.to_string())?;
                attributes.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), value.into_owned()));
            }
            Ok(Element {
                name,
                attributes,
                ..Element::default()
            })
        };
        let top = stack.len() - 1;
        match event {
            Event::Start(e) => {
                let element = open(&e).map_err(|m| fail(reader.buffer_position(), m))?;
                stack.push(element);
            }
            Event::Empty(e) => {
                let element = open(&e).map_err(|m| fail(reader.buffer_position(), m))?;
                stack[top].children.push(element);
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .filter(|_| top > 0)
                    .ok_or_else(|| fail(reader.buffer_position(), "an end tag without its start".into()))?;
                stack[top - 1].children.push(done);
            }
            Event::Text(t) => {
                let t = t.decode().map_err(|e| fail(reader.buffer_position(), e.to_string()))?;
                stack[top].text.push_str(&t);
            }
            Event::CData(t) => {
                let t = t.decode().map_err(|e| fail(reader.buffer_position(), e.to_string()))?;
                stack[top].text.push_str(&t);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.decode().map_err(|e| fail(reader.buffer_position(), e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| fail(reader.buffer_position(), format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                stack[top].text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        let open = stack.last().map(|e| e.name.clone()).unwrap_or_default();
        return Err(fail(
            text.len() as u64,
            format!("the document ends inside <{open}> (truncated)"),
        ));
    }
    stack
        .pop()
        .and_then(|root| root.children.into_iter().next())
        .ok_or_else(|| fail(0, "empty".into()))
}

/// Reads one leg; an unreadable or truncated document names the line where reading stopped.
pub fn parse(text: &[u8]) -> Result<Leg, Rejected> {
    let root = read_tree(text)?;
    if root.name != "cdr" {
        return Err(Rejected::new(
            1,
            format!("not a mod_xml_cdr document: the root is <{}>, not <cdr>", root.name),
        ));
    }
    let mut leg = Leg {
        conference: root.child("conference").is_some(),
        ..Leg::default()
    };
    leg.direction = root.child("channel_data").and_then(|c| c.value("direction"));
    if let Some(vars) = root.child("variables") {
        for v in &vars.children {
            leg.variables.insert(v.name.clone(), decode(v.text.trim()));
        }
    }
    if let Some(log) = root.child("app_log") {
        leg.apps = log
            .children("application")
            .filter_map(|a| {
                Some(App {
                    name: a.attribute("app_name")?.to_string(),
                    data: decode(a.attribute("app_data").unwrap_or_default()),
                    stamp: a
                        .attribute("app_stamp")
                        .and_then(|s| s.parse().ok())
                        .filter(|&s: &i64| s > 0),
                })
            })
            .collect();
    }
    for flow in root.children("callflow") {
        let cp = flow.child("caller_profile");
        let get = |name: &str| cp.and_then(|c| c.value(name));
        let mut times = std::collections::BTreeMap::new();
        for t in flow.child("times").map(|t| t.children.as_slice()).unwrap_or_default() {
            if let Some(us) = t.text.trim().parse::<i64>().ok().filter(|&us| us > 0) {
                times.insert(t.name.clone(), us);
            }
        }
        leg.profiles.push(Profile {
            index: flow
                .attribute("profile_index")
                .and_then(|i| i.parse().ok())
                .unwrap_or(0),
            extension: flow
                .child("extension")
                .and_then(|e| e.attribute("name"))
                .map(String::from),
            caller_id_name: get("caller_id_name"),
            caller_id_number: get("caller_id_number"),
            destination_number: get("destination_number"),
            context: get("context"),
            uuid: get("uuid"),
            times,
        });
    }
    leg.profiles.sort_by_key(|p| p.index);
    Ok(leg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_documents_name_the_line() {
        let e = parse(b"<?xml version=\"1.0\"?>\n<cdr>\n<variables>\n<uuid>x</uuid>\n").unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.reason.contains("truncated"), "{}", e.reason);
        let e = parse(b"<cdr>\n<variables>\n</cdr>").unwrap_err();
        assert_eq!(e.line, 3, "{}", e.reason);
        let e = parse(b"<call/>").unwrap_err();
        assert!(e.reason.contains("<call>"), "{}", e.reason);
    }

    #[test]
    fn entities_and_encoded_values_are_read() {
        let leg = parse(b"<cdr><variables><a>x &amp; y</a><b>%22M%22%20%3C1%3E</b></variables></cdr>").unwrap();
        assert_eq!(leg.variables["a"], "x & y");
        assert_eq!(leg.variables["b"], "\"M\" <1>");
    }
}
