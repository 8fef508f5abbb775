//! A small element tree over quick-xml that remembers where everything was,
//! so that errors can be located and unknown elements rewritten unchanged.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::Location;

/// An element with its byte offsets in the source.
#[derive(Debug)]
pub(crate) struct Element {
    /// Local name (no prefix).
    pub(crate) name: String,
    /// Namespace prefix, if any.
    pub(crate) prefix: Option<String>,
    /// The attributes as written.
    pub(crate) attrs: Vec<(String, String)>,
    /// Offset of `<`.
    pub(crate) start: usize,
    /// Offset just past the element's last `>`.
    pub(crate) end: usize,
    /// The source between the start and end tags; `None` for `<X/>`.
    pub(crate) inner: Option<(usize, usize)>,
    pub(crate) children: Vec<Node>,
    /// The element's own text, unescaped, whitespace included.
    pub(crate) text: String,
    /// Offset of the first non-whitespace character of that text.
    pub(crate) text_at: Option<usize>,
}

/// A child of an element.
#[derive(Debug)]
pub(crate) enum Node {
    Element(Element),
    /// A comment or processing instruction, kept as its source range.
    Other {
        start: usize,
        end: usize,
    },
}

/// A parsed document.
#[derive(Debug)]
pub(crate) struct Document {
    /// Comments and processing instructions before the root element.
    pub(crate) prolog: Vec<(usize, usize)>,
    pub(crate) root: Element,
}

/// A well-formedness error at a byte offset.
#[derive(Debug)]
pub(crate) struct XmlError {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

fn err<T>(offset: usize, reason: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError {
        offset,
        reason: reason.into(),
    })
}

fn element(e: &quick_xml::events::BytesStart<'_>, start: usize) -> Result<Element, XmlError> {
    let qname = e.name();
    let name = AsRef::<str>::as_ref(&qname.local_name()).to_owned();
    let prefix = qname.prefix().map(|p| AsRef::<str>::as_ref(&p).to_owned());
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = match a {
            Ok(a) => a,
            Err(e) => return err(start, format!("malformed XML: {e}")),
        };
        let key = AsRef::<str>::as_ref(&a.key).to_owned();
        let value = match a.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
            Ok(v) => v.into_owned(),
            Err(e) => return err(start, format!("malformed XML: {e}")),
        };
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        prefix,
        attrs,
        start,
        end: start,
        inner: None,
        children: Vec::new(),
        text: String::new(),
        text_at: None,
    })
}

impl Element {
    fn push_text(&mut self, text: &str, offset: usize) {
        if self.text_at.is_none()
            && let Some(i) = text.find(|c: char| !c.is_whitespace())
        {
            self.text_at = Some(offset + i);
        }
        self.text.push_str(text);
    }

    /// The child elements, in order.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Other { .. } => None,
        })
    }

    /// Where the element's value starts: its first text, else just after its start tag.
    pub(crate) fn value_at(&self) -> usize {
        self.text_at
            .or(self.inner.map(|(s, _)| s))
            .unwrap_or(self.start)
    }
}

/// Parses `src` (UTF-8, BOM already removed) into a tree.
pub(crate) fn parse(src: &str) -> Result<Document, XmlError> {
    let mut reader = Reader::from_str(src);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut prolog = Vec::new();
    // A document ends at the root's end tag; anything but whitespace,
    // comments and processing instructions after it is an error.
    loop {
        let start = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                return err(
                    reader.error_position() as usize,
                    format!("malformed XML: {e}"),
                );
            }
        };
        let end = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return err(
                        start,
                        "malformed XML: a second element after the root element",
                    );
                }
                let mut el = element(&e, start)?;
                el.inner = Some((end, end));
                stack.push(el);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return err(
                        start,
                        "malformed XML: a second element after the root element",
                    );
                }
                let mut el = element(&e, start)?;
                el.end = end;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return err(start, "malformed XML: an end tag with no start tag");
                };
                if let Some((s, _)) = el.inner {
                    el.inner = Some((s, start));
                }
                el.end = end;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.push_text(&text, start),
                    None if text.trim().is_empty() => {}
                    None => return err(start, "malformed XML: text outside the root element"),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved: String = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => s.to_owned(),
                        None => {
                            return err(start, format!("malformed XML: unknown entity &{name};"));
                        }
                    },
                    Err(e) => return err(start, format!("malformed XML: {e}")),
                };
                match stack.last_mut() {
                    Some(el) => el.push_text(&resolved, start),
                    None => return err(start, "malformed XML: text outside the root element"),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(el) => {
                    let text = c.xml10_content();
                    // Point past `<![CDATA[` at the value itself.
                    el.push_text(&text, start + 9);
                }
                None => return err(start, "malformed XML: text outside the root element"),
            },
            Event::Comment(_) | Event::PI(_) => match stack.last_mut() {
                Some(el) => el.children.push(Node::Other { start, end }),
                None if root.is_none() => prolog.push((start, end)),
                None => {}
            },
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return err(
                        src.len(),
                        format!(
                            "malformed XML: unexpected end of file, <{}> is not closed",
                            open.name
                        ),
                    );
                }
                return match root {
                    Some(root) => Ok(Document { prolog, root }),
                    None => err(src.len(), "malformed XML: no root element"),
                };
            }
        }
    }
}

/// The 1-based line and column of a byte offset; CR, LF and CRLF each end a line,
/// columns count Unicode scalars.
pub(crate) fn locate(src: &str, offset: usize) -> Location {
    let offset = offset.min(src.len());
    let mut line = 1;
    let mut line_start = 0;
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < offset {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'\r' => {
                if bytes.get(i + 1) == Some(&b'\n') && i + 1 < offset {
                    i += 1;
                }
                line += 1;
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    // `offset` may fall inside a multi-byte scalar after a lossy step; count whole scalars before it.
    let column = src
        .get(line_start..offset)
        .map_or(offset - line_start, |s| s.chars().count())
        + 1;
    Location { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_for_every_line_ending_and_columns_in_scalars() {
        let src = "a\r\nb\rc\néé<x";
        assert_eq!(locate(src, 0), Location { line: 1, column: 1 });
        assert_eq!(locate(src, 3), Location { line: 2, column: 1 });
        assert_eq!(locate(src, 5), Location { line: 3, column: 1 });
        let lt = src.find('<').unwrap();
        assert_eq!(locate(src, lt), Location { line: 4, column: 3 });
    }

    #[test]
    fn the_tree_keeps_source_ranges() {
        let src = "<R a=\"1\"><!--c--><K>v &amp; w</K><E/></R>";
        let doc = parse(src).unwrap();
        assert_eq!(doc.root.name, "R");
        assert_eq!(doc.root.attrs, [("a".to_owned(), "1".to_owned())]);
        let k = doc.root.elements().next().unwrap();
        assert_eq!(k.text, "v & w");
        assert_eq!(&src[k.start..k.end], "<K>v &amp; w</K>");
        let (s, e) = k.inner.unwrap();
        assert_eq!(&src[s..e], "v &amp; w");
        assert!(matches!(doc.root.children[0], Node::Other { .. }));
    }

    #[test]
    fn truncated_and_mismatched_documents_are_errors() {
        for src in [
            "<R><K>1</K>",
            "<R><K>1</J></R>",
            "",
            "<R></R><S/>",
            "<R>&bogus;</R>",
        ] {
            assert!(parse(src).is_err(), "{src:?}");
        }
    }
}
