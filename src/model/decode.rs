//! Lenient, bounded decoding: the miniserde visitors behind the document types of `model`.
//!
//! Lenient: each visitor accepts the JSON shapes that fit its type and leaves the field as it was
//! for any other, so that a wrong-typed value is absent rather than fatal; keys a type does not
//! list are skipped unread. Bounded, so that no 4 MiB body can make the exporter hold much more
//! than its size (docs/design.md, "Hostile documents"):
//!
//! - skipped values may nest [`MAX_DEPTH`] levels (miniserde keeps a frame per level); a
//!   document that nests deeper, as far as Go's [`GO_MAX_DEPTH`], has what lies deeper than that
//!   blanked out in place (values nobody reads) and is decoded again, so the depth costs no
//!   memory; past Go's limit it fails, as in Go;
//! - a string value is kept whole, however long, and charged to the budget below (cutting or
//!   dropping it would write a wrong label: two containers named alike past the cut, or with no
//!   name, collapse into one series); the answer's own bound leaves out, with a warning, a
//!   scrape whose labels grow past it (`scrape::MAX_ANSWER`);
//! - a map key longer than [`MAX_KEY`] is left out with its value, and counted (a label of
//!   that name is dropped with the warning about what was left out, rather than kept);
//! - a list or map keeps at most [`Bounded::MAX`] entries of its element type (containers of a
//!   task, interfaces of a container: the two that multiply the samples of a scrape), the rest
//!   are left out and counted;
//! - a stats document keeps only the entries of the containers its task document kept
//!   ([`Bounded::CLAIMED_ONLY`], the ids [`decode`] is given): the others are skipped unread and
//!   counted apart, so that stats are cut exactly where the tasks were, by id, and a stats
//!   document far longer than its task document costs nothing for the entries nobody writes;
//! - all that a document keeps (strings, list and map entries) is charged to a budget, and a
//!   document that needs more than it fails whole.
//!
//! miniserde's visitors carry no context and [`Place`] is a bare pointer, so the budget of the
//! document being decoded lives in a thread-local that [`decode`] sets and clears around each
//! call: a decode is one call on one thread.

use std::cell::{Cell, RefCell};

use miniserde::Result;
use miniserde::de::{Deserialize, Map, Seq, Visitor};

use super::Place;

/// How deep skipped values may nest.
pub const MAX_DEPTH: usize = 64;
/// How deep a document may nest at all: Go's `encoding/json` refuses deeper.
pub const GO_MAX_DEPTH: usize = 10_000;
/// The longest map key kept (a label's name, a container id), in bytes.
pub const MAX_KEY: usize = 4096;

/// Why a document could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or not the JSON type the document is (malformed, truncated, or another type):
    /// "a JSON object" or "a JSON array".
    Malformed(&'static str),
    /// Values nested deeper than [`GO_MAX_DEPTH`].
    TooDeep,
    /// What the document keeps would take more than this many bytes.
    TooLarge(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(expected) => write!(
                f,
                "response is not {expected} (malformed, truncated or of another type)"
            ),
            DecodeError::TooDeep => {
                write!(f, "response nests deeper than {GO_MAX_DEPTH} levels")
            }
            DecodeError::TooLarge(limit) => write!(
                f,
                "response would take more than {} KiB once decoded",
                limit >> 10
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A decoded document, how many list or map entries past their bound (`Bounded::MAX`) it left
/// out, and how many stats entries no kept container claims.
pub struct Decoded<T> {
    pub document: T,
    pub left_out: usize,
    pub unclaimed: usize,
}

impl<T> Decoded<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        Decoded {
            document: f(self.document),
            left_out: self.left_out,
            unclaimed: self.unclaimed,
        }
    }
}

/// A document that is a JSON array (`/tasks`, `/tasks/stats`): elements of the wrong type
/// (`null` included) are dropped, elements past `T::MAX` left out and counted.
pub(crate) struct List<T>(pub Vec<T>);

/// Decodes `text`, keeping at most `limit` bytes; `expected` names the document's JSON type for
/// the error; `claimed`, the container ids whose stats entries are kept (see
/// [`Bounded::CLAIMED_ONLY`]). A document that fails only because of a lone UTF-16 surrogate escape (`"\ud800"`)
/// is decoded again with U+FFFD in its place, as Go's `encoding/json` reads it (the text is
/// repaired in place: the escapes have the same length).
pub fn decode<T: Deserialize>(
    text: String,
    limit: usize,
    expected: &'static str,
    claimed: Vec<&str>,
) -> std::result::Result<Decoded<T>, DecodeError> {
    let mut claimed: Vec<String> = claimed.into_iter().map(str::to_owned).collect();
    crate::order::sort_by(&mut claimed, Ord::cmp);
    CLAIMED.set(claimed);
    let result = decode_any(text, limit, expected);
    CLAIMED.take();
    result
}

fn decode_any<T: Deserialize>(
    text: String,
    limit: usize,
    expected: &'static str,
) -> std::result::Result<Decoded<T>, DecodeError> {
    let mut text = text;
    let mut result = decode_once(&text, limit, expected);
    if let Err(DecodeError::TooDeep) = result {
        // Only skipped values nest that deep: blank them out past MAX_DEPTH and decode again,
        // unless the text nests past Go's limit (docs/decisions.md).
        text = match blank_past(text, MAX_DEPTH, GO_MAX_DEPTH) {
            Some(text) => text,
            None => return result,
        };
        result = decode_once(&text, limit, expected);
    }
    if let Err(DecodeError::Malformed(_)) = result
        && let Some(repaired) = replace_lone_surrogates(text)
    {
        return decode_once(&repaired, limit, expected);
    }
    result
}

fn decode_once<T: Deserialize>(
    text: &str,
    limit: usize,
    expected: &'static str,
) -> std::result::Result<Decoded<T>, DecodeError> {
    BUDGET.set(Budget {
        left: limit,
        ..Budget::default()
    });
    let result = miniserde::json::from_str::<T>(text);
    let budget = BUDGET.take();
    match (result, budget.over) {
        (Ok(document), _) => Ok(Decoded {
            document,
            left_out: budget.left_out,
            unclaimed: budget.unclaimed,
        }),
        (Err(_), Some(Over::Depth)) => Err(DecodeError::TooDeep),
        (Err(_), Some(Over::Size)) => Err(DecodeError::TooLarge(limit)),
        (Err(_), None) => Err(DecodeError::Malformed(expected)),
    }
}

/// `text` with the inside of every array and object that opens deeper than `keep` levels
/// turned into blanks, in place (`[[[1]]]` past the limit reads as an empty array), or `None`
/// if it nests deeper than `refuse` levels anywhere. Strings and their escapes are told apart,
/// so a bracket inside a string does not count. A scan of the text with a count and two flags:
/// no memory for the depth. What it gives up: JSON that is malformed inside a blanked value is
/// accepted, where Go refuses the document.
fn blank_past(text: String, keep: usize, refuse: usize) -> Option<String> {
    let mut bytes = text.into_bytes();
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    // The depth of the bracket whose inside is being blanked.
    let mut blanking: Option<usize> = None;
    for byte in &mut bytes {
        let b = *byte;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > refuse {
                        return None;
                    }
                    if depth == keep + 1 && blanking.is_none() {
                        blanking = Some(depth);
                        continue;
                    }
                }
                b']' | b'}' => {
                    if blanking == Some(depth) {
                        blanking = None;
                        depth -= 1;
                        continue;
                    }
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
        }
        if blanking.is_some() {
            *byte = b' ';
        }
    }
    // Whole characters (inside brackets, which are ASCII) became blanks: still UTF-8.
    String::from_utf8(bytes).ok()
}

/// `text` with every `\uD800`-`\uDFFF` escape that is not half of a pair replaced by `\uFFFD`
/// (the same length), or `None` if it has none. Backslashes only occur inside JSON strings, so
/// no string tracking is needed: an escaped backslash is skipped as a pair.
fn replace_lone_surrogates(text: String) -> Option<String> {
    let mut bytes = text.into_bytes();
    let unit = |bytes: &[u8], at: usize| -> Option<u16> {
        let escape = bytes.get(at..at + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(escape).ok()?, 16).ok()
    };
    let mut replaced = false;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte != b'\\' {
            i += 1;
            continue;
        }
        match unit(&bytes, i) {
            Some(0xD800..=0xDBFF) if matches!(unit(&bytes, i + 6), Some(0xDC00..=0xDFFF)) => {
                i += 12
            }
            Some(0xD800..=0xDFFF) => {
                bytes
                    .get_mut(i..i + 6)
                    .into_iter()
                    .for_each(|e| e.copy_from_slice(b"\\ufffd"));
                replaced = true;
                i += 6;
            }
            _ => i += 2,
        }
    }
    replaced.then(|| String::from_utf8(bytes).ok()).flatten()
}

// ---------------------------------------------------------------------------------------------
// The budget.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Over {
    Depth,
    Size,
}

#[derive(Clone, Copy, Default)]
struct Budget {
    /// Bytes the document may still keep.
    left: usize,
    /// How deep the skipped value being read nests.
    depth: usize,
    left_out: usize,
    unclaimed: usize,
    over: Option<Over>,
}

thread_local! {
    static BUDGET: Cell<Budget> = const {
        Cell::new(Budget { left: 0, depth: 0, left_out: 0, unclaimed: 0, over: None })
    };
    /// The container ids whose stats the document being decoded keeps, sorted.
    static CLAIMED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Whether a stats entry of this container id is kept; counts it when not.
fn claimed(id: &str) -> bool {
    let kept = CLAIMED.with_borrow(|c| c.binary_search_by(|k| k.as_str().cmp(id)).is_ok());
    if !kept {
        let _ = update(|b| {
            b.unclaimed += 1;
            Ok(())
        });
    }
    kept
}

fn update(f: impl FnOnce(&mut Budget) -> Result<()>) -> Result<()> {
    let mut budget = BUDGET.get();
    let result = f(&mut budget);
    BUDGET.set(budget);
    result
}

/// Takes `bytes` from the budget; fails the document when there are not that many left.
fn charge(bytes: usize) -> Result<()> {
    update(|b| match b.left.checked_sub(bytes) {
        Some(left) => {
            b.left = left;
            Ok(())
        }
        None => {
            b.over = Some(Over::Size);
            Err(miniserde::Error)
        }
    })
}

/// One level deeper into a skipped value.
fn enter() -> Result<()> {
    update(|b| {
        b.depth += 1;
        if b.depth > MAX_DEPTH {
            b.over = Some(Over::Depth);
            return Err(miniserde::Error);
        }
        Ok(())
    })
}

fn leave() {
    let _ = update(|b| {
        b.depth = b.depth.saturating_sub(1);
        Ok(())
    });
}

fn count_left_out() {
    let _ = update(|b| {
        b.left_out += 1;
        Ok(())
    });
}

/// Makes room for one more element in `out`, charging what the growth allocates.
fn reserve_one<T>(out: &mut Vec<T>) -> Result<()> {
    if out.len() == out.capacity() {
        let more = out.capacity().max(2);
        charge(more.saturating_mul(size_of::<T>()))?;
        out.reserve_exact(more);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Skipping, with the depth counted.

/// A value nobody reads: any JSON, nested at most [`MAX_DEPTH`] levels.
#[derive(Default)]
pub(crate) struct Skip;

#[derive(Default)]
struct SkipNested {
    child: Skip,
}

fn skip_nested() -> Result<Box<SkipNested>> {
    enter()?;
    Ok(Box::new(SkipNested::default()))
}

/// Implements the listed `Visitor` methods as "skip the value, leave the field as it was"
/// (nested values depth counted).
macro_rules! skip {
    ($($method:ident)*) => { $($crate::model::decode::skip!(@ $method);)* };
    (@null) => { fn null(&mut self) -> miniserde::Result<()> { Ok(()) } };
    (@boolean) => { fn boolean(&mut self, _: bool) -> miniserde::Result<()> { Ok(()) } };
    (@string) => { fn string(&mut self, _: &str) -> miniserde::Result<()> { Ok(()) } };
    (@negative) => { fn negative(&mut self, _: i64) -> miniserde::Result<()> { Ok(()) } };
    (@nonnegative) => { fn nonnegative(&mut self, _: u64) -> miniserde::Result<()> { Ok(()) } };
    (@float) => { fn float(&mut self, _: f64) -> miniserde::Result<()> { Ok(()) } };
    (@seq) => {
        fn seq(&mut self) -> miniserde::Result<Box<dyn miniserde::de::Seq + '_>> {
            $crate::model::decode::Skip.seq_boxed()
        }
    };
    (@map) => {
        fn map(&mut self) -> miniserde::Result<Box<dyn miniserde::de::Map + '_>> {
            $crate::model::decode::Skip.map_boxed()
        }
    };
}
pub(crate) use skip;

impl Visitor for Skip {
    skip!(null boolean string negative nonnegative float seq map);
}

impl Seq for SkipNested {
    fn element(&mut self) -> Result<&mut dyn Visitor> {
        Ok(&mut self.child)
    }
    fn finish(&mut self) -> Result<()> {
        leave();
        Ok(())
    }
}

impl Map for SkipNested {
    fn key(&mut self, _: &str) -> Result<&mut dyn Visitor> {
        Ok(&mut self.child)
    }
    fn finish(&mut self) -> Result<()> {
        leave();
        Ok(())
    }
}

impl Skip {
    pub(crate) fn seq_boxed(self) -> Result<Box<dyn Seq + 'static>> {
        Ok(skip_nested()?)
    }
    pub(crate) fn map_boxed(self) -> Result<Box<dyn Map + 'static>> {
        Ok(skip_nested()?)
    }
}

// ---------------------------------------------------------------------------------------------
// Structs: which JSON key fills which field.

/// A struct decoded from a JSON object, field by field.
pub(crate) trait Fields: Default {
    /// What making one allocates (a box), charged when it is made.
    const HEAP: usize = 0;

    /// Where the value of `key` goes, or `None` to skip it.
    fn field(&mut self, key: &str) -> Option<&mut dyn Visitor>;
}

impl<T: Fields> Fields for Box<T> {
    const HEAP: usize = size_of::<T>();

    fn field(&mut self, key: &str) -> Option<&mut dyn Visitor> {
        (**self).field(key)
    }
}

/// `fields!(Type { "JsonKey" => field, ... })`: the [`Fields`] of a struct.
macro_rules! fields {
    ($ty:ty { $($key:literal => $field:ident),* $(,)? }) => {
        impl $crate::model::decode::Fields for $ty {
            fn field(&mut self, key: &str) -> Option<&mut dyn miniserde::de::Visitor> {
                Some(match key {
                    $($key => $crate::model::Place::new(&mut self.$field),)*
                    _ => return None,
                })
            }
        }
    };
}
pub(crate) use fields;

/// `document! { pub struct Type { "JsonKey" => field: FieldType, ... } }`: a struct of the
/// documents (`Debug`, `Default`, every field public) and its [`Fields`], from one list, so that
/// a field and the key that fills it are declared once.
macro_rules! document {
    ($(#[$meta:meta])* pub struct $ty:ident {
        $($(#[$field_meta:meta])* $key:literal => $field:ident: $field_ty:ty),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $ty {
            $($(#[$field_meta])* pub $field: $field_ty,)*
        }
        $crate::model::decode::fields!($ty { $($key => $field),* });
    };
}
pub(crate) use document;

/// How many entries of a list or map of this element type are kept, and which.
pub(crate) trait Bounded {
    const MAX: usize = usize::MAX;
    /// Entries of a map keyed by container id: only the ids [`decode`] was given are kept.
    const CLAIMED_ONLY: bool = false;
    /// Whether an element is worth its place in a list (a stats map none of whose entries was
    /// kept is not).
    fn worth_keeping(&self) -> bool {
        true
    }
}

impl<T: Fields> Visitor for Place<T> {
    fn map(&mut self) -> Result<Box<dyn Map + '_>> {
        if self.out.is_none() {
            charge(T::HEAP)?;
        }
        Ok(Box::new(FieldsMap {
            out: self.out.get_or_insert_with(T::default),
            skip: Skip,
        }))
    }
    skip!(null boolean string negative nonnegative float seq);
}

struct FieldsMap<'a, T> {
    out: &'a mut T,
    skip: Skip,
}

impl<T: Fields> Map for FieldsMap<'_, T> {
    fn key(&mut self, k: &str) -> Result<&mut dyn Visitor> {
        Ok(match self.out.field(k) {
            Some(visitor) => visitor,
            None => &mut self.skip,
        })
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars.

impl Visitor for Place<String> {
    fn string(&mut self, s: &str) -> Result<()> {
        charge(s.len())?;
        self.out = Some(s.to_owned());
        Ok(())
    }
    skip!(null boolean negative nonnegative float seq map);
}

/// Counters: unsigned 64-bit in Docker's stats. A negative or fractional value is not a count.
impl Visitor for Place<u64> {
    fn nonnegative(&mut self, n: u64) -> Result<()> {
        self.out = Some(n);
        Ok(())
    }
    skip!(null boolean string negative float seq map);
}

/// Go's `*int64` fields (limits in MiB, restart count).
impl Visitor for Place<i64> {
    fn nonnegative(&mut self, n: u64) -> Result<()> {
        self.out = i64::try_from(n).ok().or(self.out);
        Ok(())
    }
    fn negative(&mut self, n: i64) -> Result<()> {
        self.out = Some(n);
        Ok(())
    }
    skip!(null boolean string float seq map);
}

/// Go's `*float64` fields (task CPU in vCPUs): any JSON number.
impl Visitor for Place<f64> {
    fn nonnegative(&mut self, n: u64) -> Result<()> {
        self.out = Some(n as f64);
        Ok(())
    }
    fn negative(&mut self, n: i64) -> Result<()> {
        self.out = Some(n as f64);
        Ok(())
    }
    fn float(&mut self, n: f64) -> Result<()> {
        self.out = Some(n);
        Ok(())
    }
    skip!(null boolean string seq map);
}

// ---------------------------------------------------------------------------------------------
// Lists and maps.

/// A JSON array; elements of the wrong type are dropped, elements past `T::MAX` left out.
impl<T: Bounded> Visitor for Place<Vec<T>>
where
    Place<T>: Visitor,
{
    fn seq(&mut self) -> Result<Box<dyn Seq + '_>> {
        Ok(Box::new(ListSeq {
            out: self.out.get_or_insert_with(Vec::new),
            slot: None,
            skip: Skip,
        }))
    }
    skip!(null boolean string negative nonnegative float map);
}

struct ListSeq<'a, T> {
    out: &'a mut Vec<T>,
    slot: Option<T>,
    skip: Skip,
}

impl<T: Bounded> ListSeq<'_, T> {
    fn flush(&mut self) -> Result<()> {
        if let Some(value) = self.slot.take().filter(T::worth_keeping) {
            reserve_one(self.out)?;
            self.out.push(value);
        }
        Ok(())
    }
}

impl<T: Bounded> Seq for ListSeq<'_, T>
where
    Place<T>: Visitor,
{
    fn element(&mut self) -> Result<&mut dyn Visitor> {
        self.flush()?;
        if self.out.len() >= T::MAX {
            count_left_out();
            return Ok(&mut self.skip);
        }
        Ok(Place::new(&mut self.slot))
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}

impl<T: Bounded> Visitor for Place<List<T>>
where
    Place<T>: Visitor,
{
    fn seq(&mut self) -> Result<Box<dyn Seq + '_>> {
        Ok(Box::new(ListSeq {
            out: &mut self.out.get_or_insert_with(|| List(Vec::new())).0,
            slot: None,
            skip: Skip,
        }))
    }
    skip!(null boolean string negative nonnegative float map);
}

/// A JSON object with arbitrary keys; entries whose value has the wrong type are dropped,
/// entries past `T::MAX` left out.
impl<T: Bounded> Visitor for Place<crate::model::Keyed<T>>
where
    Place<T>: Visitor,
{
    fn map(&mut self) -> Result<Box<dyn Map + '_>> {
        let out = &mut self.out.get_or_insert_with(Default::default).0;
        Ok(Box::new(KeyedMap {
            out,
            key: String::new(),
            slot: None,
            skip: Skip,
        }))
    }
    skip!(null boolean string negative nonnegative float seq);
}

struct KeyedMap<'a, T> {
    out: &'a mut Vec<(String, T)>,
    key: String,
    slot: Option<T>,
    skip: Skip,
}

impl<T> KeyedMap<'_, T> {
    fn flush(&mut self) -> Result<()> {
        if let Some(value) = self.slot.take() {
            reserve_one(self.out)?;
            self.out.push((std::mem::take(&mut self.key), value));
        }
        Ok(())
    }
}

impl<T: Bounded> Map for KeyedMap<'_, T>
where
    Place<T>: Visitor,
{
    fn key(&mut self, k: &str) -> Result<&mut dyn Visitor> {
        self.flush()?;
        if T::CLAIMED_ONLY && !claimed(k) {
            return Ok(&mut self.skip);
        }
        if self.out.len() >= T::MAX || k.len() > MAX_KEY {
            count_left_out();
            return Ok(&mut self.skip);
        }
        charge(k.len())?;
        k.clone_into(&mut self.key);
        Ok(Place::new(&mut self.slot))
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let rows = [
            (r#"{"a":"\ud800"}"#, Some(r#"{"a":"\ufffd"}"#)),
            (r#"{"a":"\uDC00x"}"#, Some(r#"{"a":"\ufffdx"}"#)),
            (r#"{"a":"\ud83d\ude00"}"#, None),
            (r#"{"a":"\\ud800"}"#, None),
            (r#"{"a":"\ud83d\u0041"}"#, Some(r#"{"a":"\ufffd\u0041"}"#)),
            (r#"{"a":"\ud800"#, Some(r#"{"a":"\ufffd"#)),
            (r#"{"a":"x"}"#, None),
            (r#"{"a":"\n\ud800"}"#, Some(r#"{"a":"\n\ufffd"}"#)),
            // After a pair, the scan goes on past it, not elsewhere.
            (
                r#"{"a":"\ud83d\ude00\ud800"}"#,
                Some(r#"{"a":"\ud83d\ude00\ufffd"}"#),
            ),
            // After a replacement too: an escaped backslash and the text "ud800" are not an escape.
            (r#"{"a":"\\ud800\ud800"}"#, Some(r#"{"a":"\\ud800\ufffd"}"#)),
        ];
        for (text, want) in rows {
            let repaired = replace_lone_surrogates(text.to_owned());
            assert_eq!(repaired.as_deref(), want, "{text}");
        }
    }

    /// Past `keep` levels the inside is blanked, the brackets kept; brackets inside strings and
    /// after escaped quotes do not count; past `refuse` levels, nothing is returned.
    #[test]
    fn what_nests_too_deep_is_blanked_in_place() {
        let rows = [
            ("[[[1]]]", 1, Some("[[   ]]")),
            ("[[[1]]]", 2, Some("[[[ ]]]")),
            ("[[[1]]]", 3, Some("[[[1]]]")),
            (
                r#"{"a":{"b":[1,"]"]},"c":2}"#,
                1,
                Some(r#"{"a":{           },"c":2}"#),
            ),
            (
                r#"{"a":"[[[[","b":[[7]]}"#,
                2,
                Some(r#"{"a":"[[[[","b":[[ ]]}"#),
            ),
            (
                r#"{"a":"\"[[","b":[[7]]}"#,
                2,
                Some(r#"{"a":"\"[[","b":[[ ]]}"#),
            ),
            ("[[[[[[", 4, None),
            ("[[[[]]]]", 4, Some("[[[[]]]]")),
            ("[[[[[]]]]]", 4, None),
        ];
        for (text, keep, want) in rows {
            let blanked = blank_past(text.to_owned(), keep, 4);
            assert_eq!(blanked.as_deref(), want, "{text} past {keep}");
        }
    }

    /// An unknown field nested 1,000 levels (past MAX_DEPTH, within Go's limit) costs only
    /// itself, as in Go; a document nesting 10,001 levels in all fails, as in Go.
    #[test]
    fn skipped_values_nest_as_deep_as_go_allows() {
        let nested = |levels: usize| {
            format!(
                r#"{{"Cluster":"c","Deep":{}1{},"TaskARN":"arn"}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let decoded: std::result::Result<Decoded<crate::model::TaskMetadata>, _> =
            decode(nested(1_000), 1 << 20, "a JSON object", Vec::new());
        let task = decoded.expect("decodes").document;
        assert_eq!(task.cluster.as_deref(), Some("c"));
        assert_eq!(task.task_arn.as_deref(), Some("arn"));
        let decoded: std::result::Result<Decoded<crate::model::TaskMetadata>, _> = decode(
            nested(GO_MAX_DEPTH - 1),
            1 << 20,
            "a JSON object",
            Vec::new(),
        );
        assert!(decoded.is_ok());
        let decoded: std::result::Result<Decoded<crate::model::TaskMetadata>, _> =
            decode(nested(GO_MAX_DEPTH), 1 << 20, "a JSON object", Vec::new());
        assert_eq!(decoded.err(), Some(DecodeError::TooDeep));
    }
}
