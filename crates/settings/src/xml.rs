//! A small element tree over quick-xml that remembers where everything was,
//! so that errors can be located and unknown elements rewritten unchanged.
//!
//! The tree is built without recursion, and refuses a document nested more
//! than [`MAX_DEPTH`] levels deep or holding more than [`MAX_ELEMENTS`]
//! nodes while it is read: every walk over the tree that recurses (its
//! drop, the reader's walk of unknown elements) is then bounded by the
//! depth limit, whatever the stack of the thread that reads it.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::{Limit, Location};
use crate::limits::{MAX_DEPTH, MAX_ELEMENTS};

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

/// A well-formedness error, or a limit crossed, at a byte offset.
#[derive(Debug)]
pub(crate) struct XmlError {
    pub(crate) offset: usize,
    /// What is wrong; for a limit, what was found.
    pub(crate) reason: String,
    /// The limit crossed, if that is what is wrong.
    pub(crate) limit: Option<Limit>,
}

fn err<T>(offset: usize, reason: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError {
        offset,
        reason: reason.into(),
        limit: None,
    })
}

fn over<T>(offset: usize, found: String, limit: Limit) -> Result<T, XmlError> {
    Err(XmlError {
        offset,
        reason: found,
        limit: Some(limit),
    })
}

/// A reader position as an offset into the source (which, held in memory,
/// always fits).
fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// A text of the source, decoded; an error at `offset` if it is not UTF-8
/// (which cannot happen: the source is a `str`, cut at ASCII delimiters).
fn decoded<T, E: std::fmt::Display>(decoded: Result<T, E>, offset: usize) -> Result<T, XmlError> {
    decoded.or_else(|e| err(offset, format!("malformed XML: {e}")))
}

/// A name of the source (quick-xml gives names as bytes), decoded.
fn utf8(bytes: &[u8], offset: usize) -> Result<String, XmlError> {
    decoded(std::str::from_utf8(bytes), offset).map(str::to_owned)
}

fn element(e: &quick_xml::events::BytesStart<'_>, start: usize) -> Result<Element, XmlError> {
    let qname = e.name();
    let name = utf8(qname.local_name().as_ref(), start)?;
    let prefix = match qname.prefix() {
        Some(p) => Some(utf8(p.as_ref(), start)?),
        None => None,
    };
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = match a {
            Ok(a) => a,
            Err(e) => return err(start, format!("malformed XML: {e}")),
        };
        let key = utf8(a.key.as_ref(), start)?;
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
    let mut tree = Tree::default();
    // A document ends at the root's end tag; anything but whitespace,
    // comments and processing instructions after it is an error.
    loop {
        let start = offset(reader.buffer_position());
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                return err(
                    offset(reader.error_position()),
                    format!("malformed XML: {e}"),
                );
            }
        };
        let end = offset(reader.buffer_position());
        tree.count(&event, start)?;
        match event {
            Event::Start(e) => {
                let mut el = tree.start_element(&e, start)?;
                el.inner = Some((end, end));
                tree.stack.push(el);
            }
            Event::Empty(e) => {
                let mut el = tree.start_element(&e, start)?;
                el.end = end;
                tree.attach(el);
            }
            Event::End(_) => tree.close(start, end)?,
            Event::Text(t) => tree.text(&decoded(t.xml10_content(), start)?, start)?,
            Event::GeneralRef(r) => tree.reference(&r, start)?,
            Event::CData(c) => tree.cdata(&c, start)?,
            Event::Comment(_) | Event::PI(_) => tree.other(start, end),
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => return tree.finish(src.len()),
        }
    }
}

/// A document as it is read: the elements still open, the root once it
/// is closed, the prolog, and the nodes counted against [`MAX_ELEMENTS`].
#[derive(Default)]
struct Tree {
    stack: Vec<Element>,
    root: Option<Element>,
    prolog: Vec<(usize, usize)>,
    nodes: usize,
}

impl Tree {
    /// Counts an element, comment or processing instruction; one past
    /// [`MAX_ELEMENTS`] is refused.
    fn count(&mut self, event: &Event<'_>, start: usize) -> Result<(), XmlError> {
        if matches!(
            event,
            Event::Start(_) | Event::Empty(_) | Event::Comment(_) | Event::PI(_)
        ) {
            self.nodes += 1;
            if self.nodes > MAX_ELEMENTS {
                return over(
                    start,
                    format!("more than {MAX_ELEMENTS} elements"),
                    Limit::Elements(MAX_ELEMENTS),
                );
            }
        }
        Ok(())
    }

    /// The element whose tag starts at `start`; none may follow the root
    /// element or nest deeper than [`MAX_DEPTH`].
    fn start_element(
        &self,
        e: &quick_xml::events::BytesStart<'_>,
        start: usize,
    ) -> Result<Element, XmlError> {
        if self.root.is_some() {
            return err(
                start,
                "malformed XML: a second element after the root element",
            );
        }
        if self.stack.len() >= MAX_DEPTH {
            let name = utf8(e.local_name().as_ref(), start)?;
            return over(
                start,
                format!("element <{name}> is nested more than {MAX_DEPTH} levels deep"),
                Limit::Depth(MAX_DEPTH),
            );
        }
        element(e, start)
    }

    /// A complete element: a child of the open one, or the root.
    fn attach(&mut self, el: Element) {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(Node::Element(el)),
            None => self.root = Some(el),
        }
    }

    /// The end tag at `start..end` closes the open element.
    fn close(&mut self, start: usize, end: usize) -> Result<(), XmlError> {
        let Some(mut el) = self.stack.pop() else {
            return err(start, "malformed XML: an end tag with no start tag");
        };
        if let Some((s, _)) = el.inner {
            el.inner = Some((s, start));
        }
        el.end = end;
        self.attach(el);
        Ok(())
    }

    /// Text at `start`: the open element's; outside the root element only
    /// whitespace.
    fn text(&mut self, text: &str, start: usize) -> Result<(), XmlError> {
        match self.stack.last_mut() {
            Some(el) => el.push_text(text, start),
            None if text.trim().is_empty() => {}
            None => return err(start, "malformed XML: text outside the root element"),
        }
        Ok(())
    }

    /// A character or predefined entity reference, resolved into the open
    /// element's text.
    fn reference(
        &mut self,
        r: &quick_xml::events::BytesRef<'_>,
        start: usize,
    ) -> Result<(), XmlError> {
        let name = decoded(r.xml10_content(), start)?;
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
        match self.stack.last_mut() {
            Some(el) => el.push_text(&resolved, start),
            None => return err(start, "malformed XML: text outside the root element"),
        }
        Ok(())
    }

    /// A CDATA section, into the open element's text.
    fn cdata(
        &mut self,
        c: &quick_xml::events::BytesCData<'_>,
        start: usize,
    ) -> Result<(), XmlError> {
        match self.stack.last_mut() {
            Some(el) => {
                let text = decoded(c.xml10_content(), start)?;
                // Point past `<![CDATA[` at the value itself.
                el.push_text(&text, start + 9);
            }
            None => return err(start, "malformed XML: text outside the root element"),
        }
        Ok(())
    }

    /// A comment or processing instruction, kept as its source range: in
    /// the open element, in the prolog before the root, dropped after it.
    fn other(&mut self, start: usize, end: usize) {
        match self.stack.last_mut() {
            Some(el) => el.children.push(Node::Other { start, end }),
            None if self.root.is_none() => self.prolog.push((start, end)),
            None => {}
        }
    }

    /// The document at the end of the source, `len` bytes: every element
    /// closed, a root element read.
    fn finish(self, len: usize) -> Result<Document, XmlError> {
        if let Some(open) = self.stack.last() {
            return err(
                len,
                format!(
                    "malformed XML: unexpected end of file, <{}> is not closed",
                    open.name
                ),
            );
        }
        match self.root {
            Some(root) => Ok(Document {
                prolog: self.prolog,
                root,
            }),
            None => err(len, "malformed XML: no root element"),
        }
    }
}

/// The 1-based line and column of a byte offset; CR, LF and CRLF each end a line,
/// columns count Unicode scalars.
pub(crate) fn locate(src: &str, offset: usize) -> Location {
    Locator::new(src).at(offset)
}

/// The locations of many offsets, in the order given, in one pass over
/// `src` (a located error per offset must not cost a pass each: a file
/// with thousands of problems would take quadratic time).
pub(crate) fn locate_all(src: &str, offsets: &[usize]) -> Vec<Location> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    let mut locator = Locator::new(src);
    let mut out = vec![Location { line: 1, column: 1 }; offsets.len()];
    for i in order {
        out[i] = locator.at(offsets[i]);
    }
    out
}

/// Walks `src` forward, counting lines and columns up to each offset asked.
struct Locator<'a> {
    bytes: &'a [u8],
    /// The next byte to count.
    i: usize,
    line: usize,
    column: usize,
    /// The byte before `i` was a CR: an LF at `i` ends the same line.
    after_cr: bool,
}

impl<'a> Locator<'a> {
    fn new(src: &'a str) -> Locator<'a> {
        Locator::new_bytes(src.as_bytes())
    }

    /// The location of `offset`; offsets asked in increasing order cost one
    /// pass in all, an earlier one starts over.
    fn at(&mut self, offset: usize) -> Location {
        let offset = offset.min(self.bytes.len());
        if offset < self.i {
            *self = Locator::new_bytes(self.bytes);
        }
        while self.i < offset {
            let b = self.bytes[self.i];
            match b {
                b'\n' if self.after_cr => {}
                b'\n' | b'\r' => {
                    self.line += 1;
                    self.column = 1;
                }
                // A UTF-8 continuation byte belongs to the scalar before it.
                0x80..=0xBF => {}
                _ => self.column += 1,
            }
            self.after_cr = b == b'\r';
            self.i += 1;
        }
        Location {
            line: self.line,
            column: self.column,
        }
    }

    fn new_bytes(bytes: &'a [u8]) -> Locator<'a> {
        Locator {
            bytes,
            i: 0,
            line: 1,
            column: 1,
            after_cr: false,
        }
    }
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

    /// The one-offset-at-a-time count `locate_all` must agree with.
    fn reference(src: &str, offset: usize) -> Location {
        let before = &src[..offset];
        // CR, LF and CRLF each end one line.
        let line = 1 + before.matches('\r').count() + before.matches('\n').count()
            - before.matches("\r\n").count();
        let line_start = before.rfind(['\r', '\n']).map_or(0, |i| i + 1);
        Location {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }

    #[test]
    fn many_offsets_located_in_one_pass_agree_with_each_located_alone() {
        let src = "a\r\nbé\rc\n\n\r\r\néé<x\r\n\u{1F600}z\r";
        let offsets: Vec<usize> = (0..=src.len())
            .filter(|&i| src.is_char_boundary(i))
            .rev()
            .collect();
        let all = locate_all(src, &offsets);
        for (&offset, at) in offsets.iter().zip(&all) {
            assert_eq!(*at, locate(src, offset), "offset {offset}");
            assert_eq!(*at, reference(src, offset), "offset {offset}");
        }
        // Asked in any order, as often as wanted.
        let again = locate_all(src, &[5, 0, 5, src.len()]);
        assert_eq!(again[0], again[2]);
        assert_eq!(again[1], Location { line: 1, column: 1 });
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
