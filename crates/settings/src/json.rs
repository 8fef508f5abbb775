//! The JSON view of `sauve settings show --json`: the XML element names under
//! `Backup/Settings`, nesting kept, typed values.

use serde_json::{Map, Value as Json};

use crate::model::Settings;

/// The settings as one JSON object keyed by element names, in 4D's order:
/// booleans, numbers, `"HH:MM:SS"` times and durations, 4D's tokens, and
/// `General/IncludesFiles` as an array of paths.
pub fn to_json(settings: &Settings) -> Json {
    let mut root = Map::new();
    for (path, value) in settings.entries() {
        insert(&mut root, path, value.to_json());
    }
    Json::Object(root)
}

fn insert(node: &mut Map<String, Json>, path: &str, value: Json) {
    match path.split_once('/') {
        None => {
            node.insert(path.to_owned(), value);
        }
        Some((group, rest)) => {
            let entry = node
                .entry(group.to_owned())
                .or_insert_with(|| Json::Object(Map::new()));
            // Groups are created as objects and never replaced by a value.
            if let Json::Object(child) = entry {
                insert(child, rest, value);
            }
        }
    }
}
