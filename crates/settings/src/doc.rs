//! A settings file as read: the typed values plus what is needed to write the
//! file back in 4D's shape without losing anything (original value texts,
//! unknown elements, comments, line endings).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use quick_xml::escape::partial_escape;

use crate::error::{Problem, SettingsError};
use crate::limits::{self, MAX_FILE_BYTES};
use crate::model::Settings;
use crate::schema::{self, Kind, Leaf, Value};
use crate::value::{self, Level, MonthDay, Token};
use crate::xml::{self, Element, Node};

/// The namespace of backup.4DSettings.
pub const NAMESPACE: &str = "http://www.4d.com/namespace/reserved/2004/backup";

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="no" ?>"#;
const SETTINGS: &str = "Backup/Settings";
const INCLUDES: &str = "Backup/Settings/General/IncludesFiles";

/// A backup.4DSettings document: settings plus everything needed to rewrite
/// the file faithfully.
#[derive(Clone, Debug)]
pub struct SettingsDoc {
    settings: Settings,
    newline: &'static str,
    /// Key path → (inner text as written, the value it gave).
    raw: HashMap<&'static str, (String, Value)>,
    /// The attachment items as read: (value, inner text as written).
    items_raw: Vec<(String, String)>,
    /// `ItemsCount` as read: (inner text, count).
    count_raw: Option<(String, usize)>,
    extras: Vec<Extra>,
    prolog: Vec<String>,
}

/// An unknown element, comment or processing instruction, kept verbatim and
/// written after its preceding known sibling.
#[derive(Clone, Debug)]
struct Extra {
    /// The parent's path from the root, e.g. `Backup/Settings/Advanced`.
    group: String,
    /// The known sibling it followed; `None` when it came before them all.
    after: Option<String>,
    raw: String,
}

/// A document read from a file, with the warnings the reading raised.
#[derive(Debug)]
pub struct Loaded {
    /// The document.
    pub doc: SettingsDoc,
    /// Tolerated oddities: located, like errors, but not fatal.
    pub warnings: Vec<Problem>,
}

impl Default for SettingsDoc {
    fn default() -> SettingsDoc {
        SettingsDoc::new(Settings::default())
    }
}

impl SettingsDoc {
    /// A new document holding `settings`, written with LF line endings.
    pub fn new(settings: Settings) -> SettingsDoc {
        SettingsDoc {
            settings,
            newline: "\n",
            raw: HashMap::new(),
            items_raw: Vec::new(),
            count_raw: None,
            extras: Vec::new(),
            prolog: Vec::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings, to change. The writer keeps the original text of every
    /// value left unchanged.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Reads a document. `file` is the name used in messages.
    ///
    /// A document over the limits of [`crate::Limit`] (1 MiB, 64 levels of
    /// nested elements, 10,000 elements) is refused with
    /// [`SettingsError::TooLarge`] before it is walked.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Loaded, SettingsError> {
        limits::check_size(bytes.len(), file, MAX_FILE_BYTES)?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let src = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let good = e.valid_up_to();
                // The prefix up to the error is valid UTF-8 by definition.
                let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
                return Err(SettingsError::NotUtf8 {
                    file: file.to_owned(),
                    at: xml::locate(prefix, good),
                    byte: bytes[good],
                });
            }
        };
        let doc = xml::parse(src).map_err(|e| match e.limit {
            Some(limit) => SettingsError::TooLarge {
                file: file.to_owned(),
                at: xml::locate(src, e.offset),
                found: e.reason,
                limit,
            },
            None => SettingsError::Malformed {
                file: file.to_owned(),
                at: xml::locate(src, e.offset),
                reason: e.reason,
            },
        })?;
        let mut r = Reading {
            src,
            file,
            doc: SettingsDoc::new(Settings::default()),
            problems: Vec::new(),
            warnings: Vec::new(),
            seen: HashSet::new(),
            positions: HashMap::new(),
        };
        // Missing elements take sauve's built-in defaults (behaviour §2 and §3.2).
        r.doc.newline = newline_of(src);
        r.doc.prolog = doc
            .prolog
            .iter()
            .map(|&(s, e)| src[s..e].to_owned())
            .collect();
        r.root(&doc.root)?;
        r.check_whole();
        if r.problems.is_empty() {
            let pending = std::mem::take(&mut r.warnings);
            let warnings = r.located(pending);
            Ok(Loaded {
                doc: r.doc,
                warnings,
            })
        } else {
            let pending = std::mem::take(&mut r.problems);
            let mut problems = r.located(pending);
            problems.sort_by_key(|p| (p.at.line, p.at.column));
            Err(SettingsError::Invalid { problems })
        }
    }

    /// Sets one key from its text, as `sauve settings set` does. `key` is the
    /// path under `Backup/Settings`; attachments are set one by one as
    /// `General/IncludesFiles/Item<N>` (N up to one past the last; an empty
    /// value removes the item).
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), SettingsError> {
        let key = key.trim().trim_matches('/');
        let key = key
            .strip_prefix("Backup/Settings/")
            .unwrap_or(key)
            .trim_end_matches('/');
        if let Some(n) = key
            .strip_prefix("General/IncludesFiles/Item")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            return self.set_item(key, n, text);
        }
        let Some(leaf) = schema::leaf(key) else {
            return Err(SettingsError::UnknownKey {
                key: key.to_owned(),
            });
        };
        let invalid = || SettingsError::InvalidValue {
            key: key.to_owned(),
            value: text.to_owned(),
            accepted: match leaf.kind {
                Kind::Paths => {
                    "one item at a time, as General/IncludesFiles/Item<N> PATH".to_owned()
                }
                kind => kind.accepted(),
            },
        };
        let value = leaf.kind.parse(text).ok_or_else(invalid)?;
        if !(leaf.set)(&mut self.settings, value) {
            return Err(invalid());
        }
        Ok(())
    }

    fn set_item(&mut self, key: &str, n: &str, text: &str) -> Result<(), SettingsError> {
        let items = &mut self.settings.general.includes_files;
        let len = items.len();
        let invalid = || SettingsError::InvalidValue {
            key: key.to_owned(),
            value: text.to_owned(),
            accepted: format!("Item1 to Item{} (an empty value removes the item)", len + 1),
        };
        let n: usize = n.parse().map_err(|_| invalid())?;
        let text = text.trim();
        match (n, text.is_empty()) {
            (n, true) if (1..=len).contains(&n) => {
                items.remove(n - 1);
            }
            (n, false) if (1..=len).contains(&n) => items[n - 1] = text.to_owned(),
            (n, false) if n == len + 1 => items.push(text.to_owned()),
            _ => return Err(invalid()),
        }
        Ok(())
    }

    /// The file text: 4D's modern shape, the original line endings, unchanged
    /// values in their original text, unknown elements where they were.
    pub fn to_xml(&self) -> String {
        let nl = self.newline;
        let mut out = String::with_capacity(4096);
        out.push_str(DECLARATION);
        if !self.prolog.is_empty() {
            out.push_str(nl);
            for p in &self.prolog {
                out.push_str(p);
                out.push_str(nl);
            }
        }
        out.push_str(&format!(r#"<Preferences4D xmlns="{NAMESPACE}">"#));
        out.push_str(nl);
        out.push_str(nl);
        self.write_group(&mut out, "", 1);
        out.push_str(nl);
        out.push_str("</Preferences4D>");
        out
    }

    fn write_group(&self, out: &mut String, path: &str, depth: usize) {
        let indent = "  ".repeat(depth);
        let nl = self.newline;
        self.write_extras(out, path, None, depth);
        for name in known_children(path) {
            let child = join(path, name);
            match leaf_of(&child) {
                Some(leaf) if matches!(leaf.kind, Kind::Paths) => {
                    out.push_str(&format!("{indent}<{name}>{nl}"));
                    self.write_items(out, depth + 1);
                    out.push_str(&format!("{indent}</{name}>{nl}"));
                }
                Some(leaf) => {
                    let value = (leaf.get)(&self.settings);
                    let text = match self.raw.get(leaf.path) {
                        Some((raw, was)) if *was == value => raw.clone(),
                        _ => partial_escape(value.to_4d(leaf.path)).into_owned(),
                    };
                    out.push_str(&format!("{indent}<{name}>{text}</{name}>{nl}"));
                }
                None => {
                    out.push_str(&format!("{indent}<{name}>{nl}"));
                    self.write_group(out, &child, depth + 1);
                    out.push_str(&format!("{indent}</{name}>{nl}"));
                }
            }
            self.write_extras(out, path, Some(name), depth);
        }
    }

    fn write_items(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        let nl = self.newline;
        let items = &self.settings.general.includes_files;
        self.write_extras(out, INCLUDES, None, depth);
        let count = match &self.count_raw {
            Some((raw, n)) if *n == items.len() => raw.clone(),
            _ => items.len().to_string(),
        };
        out.push_str(&format!("{indent}<ItemsCount>{count}</ItemsCount>{nl}"));
        self.write_extras(out, INCLUDES, Some("ItemsCount"), depth);
        for (i, item) in items.iter().enumerate() {
            let text = match self.items_raw.get(i) {
                Some((was, raw)) if was == item => raw.clone(),
                _ => partial_escape(item.as_str()).into_owned(),
            };
            let n = i + 1;
            out.push_str(&format!("{indent}<Item{n}>{text}</Item{n}>{nl}"));
        }
        self.write_extras(out, INCLUDES, Some("Item"), depth);
    }

    fn write_extras(&self, out: &mut String, group: &str, after: Option<&str>, depth: usize) {
        for e in &self.extras {
            if e.group == group && e.after.as_deref() == after {
                out.push_str(&"  ".repeat(depth));
                out.push_str(&e.raw);
                out.push_str(self.newline);
            }
        }
    }
}

/// The line ending of the first line; LF when the file has one line.
fn newline_of(src: &str) -> &'static str {
    match src.find(['\r', '\n']) {
        Some(i) if src[i..].starts_with("\r\n") => "\r\n",
        Some(i) if src[i..].starts_with('\r') => "\r",
        _ => "\n",
    }
}

/// A key path as a problem names it: an unknown element may nest long
/// names, and a path longer than this is shown by its ends, so that
/// thousands of problems under it do not each copy it whole.
fn shortened(path: &str) -> String {
    const KEEP: usize = 120;
    if path.len() <= 2 * KEEP {
        return path.to_owned();
    }
    let mut head = KEEP;
    while !path.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = path.len() - KEEP;
    while !path.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{}", &path[..head], &path[tail..])
}

fn join(group: &str, name: &str) -> String {
    if group.is_empty() {
        name.to_owned()
    } else {
        format!("{group}/{name}")
    }
}

/// Known child names of a group, given by its path from the root.
fn known_children(group: &str) -> Vec<&'static str> {
    match group {
        "" => vec!["Backup"],
        "Backup" => vec!["Settings"],
        SETTINGS => schema::children(""),
        _ => match group.strip_prefix("Backup/Settings/") {
            Some(rest) if schema::is_group(rest) => schema::children(rest),
            _ => Vec::new(),
        },
    }
}

fn leaf_of(path: &str) -> Option<&'static Leaf> {
    path.strip_prefix("Backup/Settings/").and_then(schema::leaf)
}

/// A problem found, located once the read is over (in one pass for all).
struct Pending {
    offset: usize,
    key: String,
    message: String,
}

/// The state of one read.
struct Reading<'a> {
    src: &'a str,
    file: &'a str,
    doc: SettingsDoc,
    problems: Vec<Pending>,
    warnings: Vec<Pending>,
    seen: HashSet<String>,
    /// Where each key's value was, for checks that span several keys.
    positions: HashMap<&'static str, usize>,
}

impl Reading<'_> {
    /// The problems, in the order given, with their lines and columns.
    fn located(&self, pending: Vec<Pending>) -> Vec<Problem> {
        let offsets: Vec<usize> = pending.iter().map(|p| p.offset).collect();
        xml::locate_all(self.src, &offsets)
            .into_iter()
            .zip(pending)
            .map(|(at, p)| Problem {
                file: self.file.to_owned(),
                at,
                key: p.key,
                message: p.message,
            })
            .collect()
    }

    fn error(&mut self, offset: usize, key: &str, message: String) {
        self.problems.push(Pending {
            offset,
            key: key.to_owned(),
            message,
        });
    }

    fn warn(&mut self, offset: usize, key: &str, message: String) {
        self.warnings.push(Pending {
            offset,
            key: key.to_owned(),
            message,
        });
    }

    fn fatal(&self, offset: usize, reason: String) -> SettingsError {
        SettingsError::Malformed {
            file: self.file.to_owned(),
            at: xml::locate(self.src, offset),
            reason,
        }
    }

    fn root(&mut self, root: &Element) -> Result<(), SettingsError> {
        if root.name != "Preferences4D" {
            return Err(self.fatal(
                root.start,
                format!(
                    "wrong root element <{}> (accepted: <Preferences4D xmlns=\"{NAMESPACE}\">)",
                    root.name
                ),
            ));
        }
        let ns_attr = root
            .prefix
            .as_ref()
            .map_or_else(|| "xmlns".to_owned(), |p| format!("xmlns:{p}"));
        match root.attrs.iter().find(|(k, _)| *k == ns_attr) {
            None => self.warn(
                root.start,
                "",
                format!("no namespace on <Preferences4D>; read as {NAMESPACE}"),
            ),
            Some((_, ns)) if ns != NAMESPACE => {
                return Err(self.fatal(
                    root.start,
                    format!("foreign namespace \"{ns}\" (accepted: {NAMESPACE})"),
                ));
            }
            Some(_) => {}
        }
        if root.elements().all(|e| e.name != "Backup") {
            self.warn(
                root.start,
                "",
                "no <Backup> element: every key has its default".to_owned(),
            );
        }
        self.group(root, "");
        Ok(())
    }

    fn group(&mut self, el: &Element, path: &str) {
        let known = known_children(path);
        if let Some(at) = el.text_at {
            let text = el.text.trim().to_owned();
            self.error(
                at,
                path,
                format!(
                    "unexpected text \"{text}\" (accepted: the elements {})",
                    known.join(", ")
                ),
            );
        }
        let mut after: Option<String> = None;
        for node in &el.children {
            let c = match node {
                Node::Other { start, end } => {
                    self.extra(path, after.clone(), *start, *end);
                    continue;
                }
                Node::Element(c) => c,
            };
            let child = join(path, &c.name);
            if !known.contains(&c.name.as_str()) {
                self.legacy(c, &child);
                self.extra(path, after.clone(), c.start, c.end);
                continue;
            }
            after = Some(c.name.clone());
            if !self.seen.insert(child.clone()) {
                self.error(
                    c.start,
                    &child,
                    format!("duplicate element <{}> (accepted: one)", c.name),
                );
                continue;
            }
            match leaf_of(&child) {
                Some(leaf) if matches!(leaf.kind, Kind::Paths) => self.includes(c),
                Some(leaf) => self.leaf(leaf, c, &child),
                None => self.group(c, &child),
            }
        }
    }

    fn extra(&mut self, group: &str, after: Option<String>, start: usize, end: usize) {
        self.doc.extras.push(Extra {
            group: group.to_owned(),
            after,
            raw: self.src[start..end].to_owned(),
        });
    }

    /// Expects a plain value: no child elements.
    fn plain<'e>(&mut self, el: &'e Element, key: &str) -> Option<&'e str> {
        if let Some(child) = el.elements().next() {
            self.error(
                child.start,
                key,
                format!("expected a value, found element <{}>", child.name),
            );
            return None;
        }
        Some(&el.text)
    }

    fn inner(&self, el: &Element) -> String {
        el.inner
            .map(|(s, e)| self.src[s..e].to_owned())
            .unwrap_or_default()
    }

    fn leaf(&mut self, leaf: &'static Leaf, el: &Element, key: &str) {
        let Some(text) = self.plain(el, key) else {
            return;
        };
        let at = el.value_at();
        self.positions.insert(leaf.path, at);
        // 4D writes `<Frequency></Frequency>` in some legacy files and treats
        // it as no schedule: read it as Never, with a warning.
        let text = if leaf.path == "Scheduler/Frequency" && text.trim().is_empty() {
            self.warn(
                at,
                key,
                "empty value read as Never: no backup is scheduled".to_owned(),
            );
            "Never"
        } else {
            text
        };
        let Some(value) = leaf.kind.parse(text) else {
            self.error(
                at,
                key,
                format!(
                    "invalid value \"{}\" (accepted: {})",
                    text.trim(),
                    leaf.kind.accepted()
                ),
            );
            return;
        };
        self.value_warnings(leaf, &value, at, key);
        (leaf.set)(&mut self.doc.settings, value);
        let stored = (leaf.get)(&self.doc.settings);
        let raw = self.inner(el);
        self.doc.raw.insert(leaf.path, (raw, stored));
    }

    fn value_warnings(&mut self, leaf: &Leaf, value: &Value, at: usize, key: &str) {
        let message = match (leaf.name(), value) {
            ("Redundancy" | "Interlacing", Value::Token(t)) if t != Level::None.token() => {
                format!(
                    "{t} has no effect in sauve; archives are written without redundancy or interlacing"
                )
            }
            ("AutomaticLogIntegrationStrictness", Value::Token(t))
                if !t.eq_ignore_ascii_case("strict") =>
            {
                format!("\"{t}\" is not implemented; log integration is strict")
            }
            ("Day", Value::Day(MonthDay::Day(d @ 29..=31))) => {
                format!("day {d} is clamped to the last day of shorter months")
            }
            _ => return,
        };
        self.warn(at, key, message);
    }

    fn includes(&mut self, el: &Element) {
        let mut count: Option<(usize, usize)> = None;
        let mut items: Vec<(u64, String, String, usize)> = Vec::new();
        // The numbers seen: thousands of items are checked in linear time.
        let mut numbers: HashSet<u64> = HashSet::new();
        let mut after: Option<String> = None;
        for node in &el.children {
            let c = match node {
                Node::Other { start, end } => {
                    self.extra(INCLUDES, after.clone(), *start, *end);
                    continue;
                }
                Node::Element(c) => c,
            };
            let key = join(INCLUDES, &c.name);
            let item_number = c
                .name
                .strip_prefix("Item")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n >= 1);
            if c.name == "ItemsCount" {
                after = Some("ItemsCount".to_owned());
                let Some(text) = self.plain(c, &key) else {
                    continue;
                };
                match value::parse_int(text).and_then(|n| usize::try_from(n).ok()) {
                    Some(n) if count.is_none() => {
                        count = Some((n, c.value_at()));
                        self.doc.count_raw = Some((self.inner(c), n));
                    }
                    Some(_) => self.error(
                        c.start,
                        &key,
                        "duplicate element <ItemsCount> (accepted: one)".to_owned(),
                    ),
                    None => self.error(
                        c.value_at(),
                        &key,
                        format!(
                            "invalid value \"{}\" (accepted: integer 0 or more)",
                            text.trim()
                        ),
                    ),
                }
            } else if let Some(n) = item_number {
                after = Some("Item".to_owned());
                let Some(text) = self.plain(c, &key) else {
                    continue;
                };
                if !numbers.insert(n) {
                    self.error(
                        c.start,
                        &key,
                        format!("duplicate element <{}> (accepted: one)", c.name),
                    );
                    continue;
                }
                items.push((n, text.trim().to_owned(), self.inner(c), c.value_at()));
            } else {
                self.extra(INCLUDES, after.clone(), c.start, c.end);
            }
        }
        items.sort_by_key(|i| i.0);
        let present = items.len();
        let mut kept = Vec::new();
        for (n, value, raw, at) in items {
            if value.is_empty() {
                self.warn(
                    at,
                    &format!("{INCLUDES}/Item{n}"),
                    "empty item ignored".to_owned(),
                );
            } else {
                kept.push((value, raw));
            }
        }
        if let Some((n, at)) = count
            && n != present
        {
            self.warn(
                at,
                &format!("{INCLUDES}/ItemsCount"),
                format!(
                    "ItemsCount is {n} but {present} items are present; the items present are used"
                ),
            );
        }
        self.doc.settings.general.includes_files = kept.iter().map(|(v, _)| v.clone()).collect();
        self.doc.items_raw = kept;
    }

    /// Reads the legacy values sauve honours out of an unknown element, which
    /// is otherwise kept verbatim. The element may nest anything: it is
    /// walked with a stack of its own, never by recursion.
    fn legacy(&mut self, el: &Element, path: &str) {
        // Each element waits with its parent's path, shared: a path is
        // built when its element is read, so that thousands of siblings
        // under a long path do not each hold a copy of it at once.
        let mut pending: Vec<(&Element, Option<Rc<str>>)> = vec![(el, None)];
        while let Some((el, parent)) = pending.pop() {
            let path: Rc<str> = match &parent {
                Some(p) => join(p, &el.name).into(),
                None => path.into(),
            };
            if !path.starts_with(SETTINGS) {
                continue;
            }
            self.legacy_value(el, &path);
            // Reversed, so that the children are read in file order.
            let children: Vec<&Element> = el.elements().collect();
            for c in children.into_iter().rev() {
                pending.push((c, Some(Rc::clone(&path))));
            }
        }
    }

    /// The legacy value `el` (at `path`) holds, if it is one sauve honours.
    fn legacy_value(&mut self, el: &Element, path: &str) {
        let text = el.text.trim();
        let at = el.value_at();
        let legacy = &mut self.doc.settings.legacy;
        let bad = match el.name.as_str() {
            "JournalFileEnabled" => match value::parse_bool(text) {
                Some(b) => {
                    legacy.journal_file_enabled = Some(b);
                    None
                }
                None => Some(Kind::Bool.accepted()),
            },
            _ if path == "Backup/Settings/Advanced/Transaction/Timeout" => {
                match value::parse_delay(text) {
                    Some(d) => {
                        legacy.transaction_timeout = Some(d);
                        None
                    }
                    None => Some(Kind::Delay.accepted()),
                }
            }
            _ if path == "Backup/Settings/Advanced/Transaction/WaitForEndOfTransaction" => {
                match value::parse_bool(text) {
                    Some(b) => {
                        legacy.wait_for_end_of_transaction = Some(b);
                        None
                    }
                    None => Some(Kind::Bool.accepted()),
                }
            }
            _ => None,
        };
        if let Some(accepted) = bad {
            self.warn(
                at,
                &shortened(path),
                format!("legacy value \"{text}\" ignored (accepted: {accepted})"),
            );
        }
    }

    /// Checks that concern several keys at once.
    fn check_whole(&mut self) {
        let s = &self.doc.settings.scheduler;
        if s.frequency == crate::value::Frequency::Weekly && !s.weekly.days.iter().any(|d| d.save) {
            let at = self
                .positions
                .get("Scheduler/Frequency")
                .copied()
                .unwrap_or(0);
            self.warn(
                at,
                "Backup/Settings/Scheduler/Frequency",
                "Frequency is Weekly but no day has Save=True: no backup is scheduled".to_owned(),
            );
        }
    }
}
