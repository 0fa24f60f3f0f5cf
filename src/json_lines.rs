//! Reads and writes `UserEvent`s as JSON lines in the protobuf JSON mapping, with the code
//! build.rs generates from the schema (pbjson). Fed bytes by `produce --input`'s reader
//! thread; feeds parsed events to the producer, and prints stored events for `consume`.
//!
//! One line is one event, for example
//!
//! ```text
//! {"eventId":"0b0e...","timestamp":"1700000000000","userId":"user-7","eventType":"USER_LOGIN","data":{"metadata":{"source":"web"}}}
//! ```
//!
//! Input is read as protobuf JSON parsers read it, for every field the schema has, with no
//! list of fields here: lowerCamelCase (`userId`) and proto (`user_id`) field names, 64-bit
//! integers as numbers or decimal strings, enums by name or number, maps as objects, `null`
//! for "not set". An unknown field or enum value is an error naming it, because a misspelt
//! field on the way into Kafka is a bug better caught at the first line; unknown fields
//! (not enum values) can be dropped instead ([`ParseOptions::ignore_unknown_fields`]).
//! Two fields get a value when missing: `eventId` a fresh UUIDv4, `timestamp` the time the
//! line was read.

mod fast;
mod lenient;

use std::cell::RefCell;
use std::fmt;
use std::io::{ErrorKind, Read};

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::event::UserEvent;
use lenient::{Lenient, State};

/// Bytes asked of the input per read: large, so reading costs one system call per few
/// thousand lines, from a file or a pipe alike.
pub const READ_BYTES: usize = 256 * 1024;

/// The longest line accepted, in bytes; a longer one is reported (as a bad line) and
/// skipped without being held in memory. Far above any event the producer can send (its
/// batch cap, `--batch-max-bytes`, is 1 MB by default).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Top-level keys whose presence decides a default: (key as written, field).
const DEFAULTED_FIELDS: &[(&str, &str)] = &[
    ("eventId", "eventId"),
    ("event_id", "eventId"),
    ("timestamp", "timestamp"),
];

/// How lines are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Drop fields the schema does not have (a newer producer's, say) instead of refusing
    /// the line. Off by default: an unknown field is more often a typo.
    pub ignore_unknown_fields: bool,
}

/// A line of input that did not give an event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the input, counting blank lines too, as editors number lines.
    pub line: usize,
    /// What is wrong, naming the field at fault where there is one.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// Parses single lines; keeps its buffers from one line to the next.
#[derive(Debug)]
pub struct LineParser {
    state: RefCell<State>,
}

impl Default for LineParser {
    fn default() -> Self {
        Self::new(ParseOptions::default())
    }
}

impl LineParser {
    pub fn new(options: ParseOptions) -> Self {
        let mut state = State::new(DEFAULTED_FIELDS);
        state.ignore_unknown_fields = options.ignore_unknown_fields;
        LineParser {
            state: RefCell::new(state),
        }
    }

    /// Parses one line holding one `UserEvent` in the protobuf JSON mapping.
    ///
    /// A missing (or `null`) `eventId` becomes a fresh UUIDv4 and a missing `timestamp`
    /// becomes `now()`, which is called only then; an empty `eventId` or a `timestamp` of 0
    /// that the line gives is kept. Other missing fields are unset, as in protobuf. The
    /// error names the field at fault (`data.metadata: ...`). Never panics.
    ///
    /// The generated code reads the line first, alone (`fast.rs`); only a line it refuses
    /// (`null` for a field that is not `optional` or a message, an unknown field, anything
    /// wrong) is read again through the adapter (`lenient.rs`), which decides it and words
    /// the error.
    pub fn parse(&self, line: &str, now: impl FnOnce() -> i64) -> Result<UserEvent, String> {
        let Parsed {
            mut event,
            event_id_given,
            timestamp_given,
        } = match self.parse_fast(line) {
            Some(parsed) => parsed,
            None => self.parse_lenient(line)?,
        };
        if !event_id_given {
            event.event_id = fresh_event_id();
        }
        if !timestamp_given {
            event.timestamp = now();
        }
        Ok(event)
    }

    /// The line read by the generated code alone, or None where the adapter must decide.
    fn parse_fast(&self, line: &str) -> Option<Parsed> {
        let (event, given) = fast::parse(line, DEFAULTED_FIELDS).ok()?;
        let is_given = |field: &str| {
            DEFAULTED_FIELDS
                .iter()
                .enumerate()
                .any(|(at, (_, canonical))| *canonical == field && given & (1 << at) != 0)
        };
        Some(Parsed {
            event,
            event_id_given: is_given("eventId"),
            timestamp_given: is_given("timestamp"),
        })
    }

    /// The line read through the adapter, or the error as the user sees it.
    fn parse_lenient(&self, line: &str) -> Result<Parsed, String> {
        self.state.borrow_mut().reset();
        let mut de = serde_json::Deserializer::from_str(line);
        let parsed = UserEvent::deserialize(Lenient {
            de: &mut de,
            state: &self.state,
            depth: 0,
        })
        .and_then(|event| de.end().map(|()| event));
        let state = self.state.borrow();
        let event = parsed.map_err(|e| describe(&e, state.error_path.as_deref()))?;
        Ok(Parsed {
            event,
            event_id_given: state.given.contains(&"eventId"),
            timestamp_given: state.given.contains(&"timestamp"),
        })
    }
}

/// A line as read, before the defaults: the event and which defaulted fields it gave.
#[derive(Debug, PartialEq)]
struct Parsed {
    event: UserEvent,
    event_id_given: bool,
    timestamp_given: bool,
}

/// A UUIDv4 as Display writes it (lowercase, hyphenated), without the formatter.
fn fresh_event_id() -> String {
    Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// Parses one line with the default options (unknown fields refused); see
/// [`LineParser::parse`], which reuses its buffers from line to line.
pub fn parse_line(line: &str, now_ms: i64) -> Result<UserEvent, String> {
    LineParser::new(ParseOptions::default()).parse(line, || now_ms)
}

/// The parse error as a sentence: the field path, then what is wrong with it.
fn describe(error: &serde_json::Error, path: Option<&str>) -> String {
    use serde_json::error::Category;
    let text = error.to_string();
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => format!("not valid JSON: {text}"),
        Category::Data => {
            // serde_json appends the position; on a one-line value the field path says more.
            let text = match text.rsplit_once(" at line ") {
                Some((head, _)) if error.line() > 0 => head,
                _ => &text,
            };
            // pbjson reads 64-bit integers through an untagged enum and `str::parse`, whose
            // messages do not say what was expected; its enum messages say "expected" twice.
            const INTEGER: &str = "expected an integer, as a number or a decimal string, in range";
            let text = if text.starts_with("data did not match any variant of untagged enum") {
                INTEGER.to_string()
            } else if text.contains("found in string")
                || text.starts_with("number too")
                || text.starts_with("cannot parse integer")
            {
                format!("{text}: {INTEGER}")
            } else {
                text.replace("expected expected ", "expected ")
            };
            match path {
                Some(path) if !path.is_empty() => format!("{path}: {text}"),
                _ => text,
            }
        }
    }
}

/// Reads JSON lines from a byte stream: one `Result` per non-blank line, in input order.
///
/// Reads [`READ_BYTES`] at a time and splits lines itself, so a pipe costs what a file does.
/// Lines end with `\n` or `\r\n`; blank and whitespace-only lines are skipped (but counted);
/// a UTF-8 byte order mark before the first line is ignored. A bad line gives an `Err` and
/// reading goes on with the next line, so a caller can report every bad line of a file at
/// once. A read error also gives an `Err` with the line it happened on, and ends the
/// iteration, since a failing reader rarely recovers. The clock is read at most once per
/// block read, and only if a line of the block lacks a `timestamp`. Never panics.
pub struct JsonLinesReader<R: Read> {
    /// Where bytes come from.
    reader: R,
    /// Read but not yet parsed: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the `\n` ending the next line is, once [`Self::has_buffered_line`] found it:
    /// so the next item does not search for it again.
    line_end: Option<usize>,
    /// Number of the last line taken (0 before the first), for error messages.
    line: usize,
    /// The reader said end of input.
    eof: bool,
    /// A read failed: the iteration is over.
    failed: bool,
    /// The current line was reported as too long; its bytes are dropped up to its end.
    skipping: bool,
    /// [`MAX_LINE_BYTES`], smaller in tests.
    max_line_bytes: usize,
    parser: LineParser,
    /// Gives "now" in milliseconds since the epoch for lines without a `timestamp`; a
    /// function rather than the system clock so tests are deterministic.
    clock: fn() -> i64,
    /// "now" for the lines of the current block, once a line needed it.
    now: Option<i64>,
}

impl<R: Read> JsonLinesReader<R> {
    /// A reader that stamps lines without a `timestamp` with the current system time.
    pub fn new(reader: R, options: ParseOptions) -> Self {
        Self::with_clock(reader, options, system_now_ms)
    }

    /// A reader that takes "now" (milliseconds since the epoch) from `clock`.
    pub fn with_clock(reader: R, options: ParseOptions, clock: fn() -> i64) -> Self {
        JsonLinesReader {
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            line_end: None,
            line: 0,
            eof: false,
            failed: false,
            skipping: false,
            max_line_bytes: MAX_LINE_BYTES,
            parser: LineParser::new(options),
            clock,
            now: None,
        }
    }

    /// Whether the next item can come without reading more input. A reader of a live
    /// pipe hands over what it has before it may wait for more.
    pub fn has_buffered_line(&mut self) -> bool {
        if self.line_end.is_none() {
            self.line_end = self.find_line_end();
        }
        self.eof || self.line_end.is_some()
    }

    /// Where the `\n` ending the next buffered line is, if it is buffered.
    fn find_line_end(&self) -> Option<usize> {
        memchr::memchr(b'\n', &self.buf[self.start..self.end]).map(|at| self.start + at)
    }

    /// Parses the line in `buf[from..to]` (its `\n` excluded); None for a blank line.
    fn take_line(&mut self, from: usize, to: usize) -> Option<Result<UserEvent, LineError>> {
        self.line += 1;
        let mut bytes = &self.buf[from..to];
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if self.line == 1 {
            // A UTF-8 byte order mark, as some Windows editors write: not part of the JSON.
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let line = self.line;
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => {
                let (clock, now) = (self.clock, &mut self.now);
                self.parser.parse(text, || *now.get_or_insert_with(clock))
            }
            Err(e) => Err(format!("not valid UTF-8 (byte offset {})", e.valid_up_to())),
        };
        Some(result.map_err(|message| LineError { line, message }))
    }

    /// Reads the next block after what is buffered; false at end of input or on an error
    /// (then `failed` is set and the error returned through `Err`).
    fn fill(&mut self) -> Result<bool, LineError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let wanted = self.end + READ_BYTES;
        if self.buf.len() < wanted {
            self.buf.resize(wanted, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.now = None;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failed = true;
                    return Err(LineError {
                        line: self.line + 1,
                        message: format!("could not read input: {e}"),
                    });
                }
            }
        }
    }
}

impl<R: Read> Iterator for JsonLinesReader<R> {
    type Item = Result<UserEvent, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            if let Some(to) = self.line_end.take().or_else(|| self.find_line_end()) {
                let from = self.start;
                self.start = to + 1;
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                match self.take_line(from, to) {
                    Some(item) => return Some(item),
                    None => continue,
                }
            }
            if self.eof {
                let (from, to) = (self.start, self.end);
                self.start = self.end;
                if from == to || std::mem::take(&mut self.skipping) {
                    return None;
                }
                match self.take_line(from, to) {
                    Some(item) => return Some(item),
                    None => return None,
                }
            }
            if self.skipping {
                self.start = self.end;
            } else if self.end - self.start > self.max_line_bytes {
                self.start = self.end;
                self.skipping = true;
                self.line += 1;
                return Some(Err(LineError {
                    line: self.line,
                    message: format!(
                        "longer than {} bytes without a line end; one event per line is \
                         expected",
                        self.max_line_bytes
                    ),
                }));
            }
            if let Err(e) = self.fill() {
                return Some(Err(e));
            }
        }
        None
    }
}

/// Milliseconds since the epoch, now.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_millis() as i64)
}

/// Appends the event as one line of JSON (no line end) in the protobuf JSON mapping, which
/// [`LineParser::parse`] reads back into the same event: lowerCamelCase names, 64-bit
/// integers as decimal strings, enums by name, every field written (defaults too, so that
/// an empty `eventId` or a `timestamp` of 0 is not replaced on the way back in), unset
/// `optional` fields and messages left out.
///
/// An enum number the schema does not name (a record written with a newer schema) is
/// written as that number, as the mapping says; [`LineParser::parse`] refuses it, since no
/// such event should be sent by this build.
pub fn write_event_json(event: &UserEvent, out: &mut Vec<u8>) -> Result<(), String> {
    let mark = out.len();
    if serde_json::to_writer(&mut *out, event).is_ok() {
        return Ok(());
    }
    // pbjson's code writes enums by name only; reflection writes unnamed numbers as numbers.
    out.truncate(mark);
    write_by_reflection(event, out).map_err(|e| {
        out.truncate(mark);
        format!("cannot be written as JSON: {e}")
    })
}

/// [`write_event_json`] through prost-reflect and the compiled-in descriptors: slower, and
/// used only for events the generated code cannot write.
fn write_by_reflection(event: &UserEvent, out: &mut Vec<u8>) -> Result<(), String> {
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
    static DESCRIPTOR: std::sync::OnceLock<Result<prost_reflect::MessageDescriptor, String>> =
        std::sync::OnceLock::new();
    let descriptor = DESCRIPTOR
        .get_or_init(|| {
            let pool = DescriptorPool::decode(crate::event::FILE_DESCRIPTOR_SET)
                .map_err(|e| e.to_string())?;
            pool.get_message_by_name("events.UserEvent")
                .ok_or_else(|| "events.UserEvent is not in the compiled schema".to_string())
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let message = DynamicMessage::decode(descriptor.clone(), event.encode_to_vec().as_slice())
        .map_err(|e| e.to_string())?;
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut serializer = serde_json::Serializer::new(out);
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|e| e.to_string())
}

/// The event as a JSON value, as [`write_event_json`] writes it.
pub fn event_to_json(event: &UserEvent) -> Value {
    let mut out = Vec::new();
    match write_event_json(event, &mut out) {
        Ok(()) => serde_json::from_slice(&out).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

#[cfg(test)]
#[allow(
    clippy::needless_update,
    reason = "event literals end with ..Default::default() so that a field added to the schema builds"
)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{self, Cursor, Read};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::event::{EventType, UserEventData};
    use crate::generator::Generator;

    const NOW: i64 = 1_700_000_000_000;

    fn read_all(input: &[u8]) -> Vec<Result<UserEvent, LineError>> {
        JsonLinesReader::with_clock(Cursor::new(input.to_vec()), ParseOptions::default(), || NOW)
            .collect()
    }

    fn err(line: &str) -> String {
        parse_line(line, NOW).expect_err("line should be rejected")
    }

    fn lenient(line: &str) -> Result<UserEvent, String> {
        let options = ParseOptions {
            ignore_unknown_fields: true,
        };
        LineParser::new(options).parse(line, || NOW)
    }

    fn to_line(event: &UserEvent) -> String {
        let mut out = Vec::new();
        write_event_json(event, &mut out).expect("a known event type");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    fn metadata(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_camel_case_fields_with_string_timestamp_and_enum_name() {
        let line = r#"{"eventId":"e-1","timestamp":"1700000000123","userId":"user-7",
            "eventType":"USER_REGISTERED","data":{"email":"a@example.com","username":"a",
            "metadata":{"source":"web"}}}"#
            .replace('\n', "");
        let expected = UserEvent {
            event_id: "e-1".into(),
            timestamp: 1_700_000_000_123,
            user_id: "user-7".into(),
            event_type: EventType::UserRegistered as i32,
            data: Some(UserEventData {
                email: Some("a@example.com".into()),
                username: Some("a".into()),
                metadata: metadata(&[("source", "web")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(parse_line(&line, NOW), Ok(expected));
    }

    #[test]
    fn parses_proto_field_names_with_number_timestamp_and_enum_number() {
        let line = r#"{"event_id":"e-2","timestamp":-5,"user_id":"u","event_type":3}"#;
        let expected = UserEvent {
            event_id: "e-2".into(),
            timestamp: -5,
            user_id: "u".into(),
            event_type: EventType::UserLogout as i32,
            ..Default::default()
        };
        assert_eq!(parse_line(line, NOW), Ok(expected));
    }

    #[test]
    fn missing_event_id_becomes_fresh_uuid_v4_and_missing_timestamp_becomes_now() {
        let given = LineParser::default().parse(r#"{"eventId":"e","timestamp":3}"#, || NOW);
        assert_eq!(
            given.map(|e| (e.event_id, e.timestamp)),
            Ok(("e".into(), 3))
        );
        let a = parse_line(r#"{"userId":"u","eventType":"USER_LOGIN"}"#, NOW).unwrap();
        let b = parse_line(r#"{"userId":"u","eventType":"USER_LOGIN"}"#, NOW).unwrap();
        assert_eq!(a.timestamp, NOW);
        let id = Uuid::parse_str(&a.event_id).expect("a UUID");
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert_ne!(a.event_id, b.event_id, "each line gets its own id");
    }

    #[test]
    fn an_empty_event_id_and_a_zero_timestamp_given_are_kept() {
        let event = parse_line(r#"{"eventId":"","timestamp":"0"}"#, NOW).unwrap();
        assert_eq!((event.event_id.as_str(), event.timestamp), ("", 0));
        let event = parse_line(r#"{"event_id":"","timestamp":0}"#, NOW).unwrap();
        assert_eq!((event.event_id.as_str(), event.timestamp), ("", 0));
    }

    #[test]
    fn null_fields_count_as_not_set() {
        let line = r#"{"eventId":null,"timestamp":null,"userId":null,"eventType":null,
            "data":{"email":null,"username":null,"metadata":null}}"#
            .replace('\n', "");
        let event = parse_line(&line, NOW).unwrap();
        assert!(Uuid::parse_str(&event.event_id).is_ok(), "{event:?}");
        assert_eq!(event.timestamp, NOW);
        assert_eq!(event.user_id, "");
        assert_eq!(event.event_type, EventType::Unknown as i32);
        assert_eq!(event.data, Some(UserEventData::default()));
        assert_eq!(parse_line(r#"{"data":null}"#, NOW).unwrap().data, None);
        // A map value is not a field: null there is refused.
        assert_eq!(
            err(r#"{"data":{"metadata":{"k":null}}}"#),
            "data.metadata.k: invalid type: null, expected a string"
        );
    }

    #[test]
    fn unknown_fields_are_rejected_by_name_with_the_known_fields_and_the_flag() {
        assert_eq!(
            err(r#"{"userId":"u","user":"x"}"#),
            "unknown field \"user\": UserEvent has eventId, timestamp, userId, eventType, data \
             (or their proto names); ParseOptions::ignore_unknown_fields drops fields the schema does not have"
        );
        let nested = err(r#"{"data":{"mail":"x"}}"#);
        assert!(
            nested.starts_with(
                "data: unknown field \"mail\": UserEventData has email, username, metadata"
            ),
            "{nested}"
        );
    }

    #[test]
    fn unknown_fields_are_dropped_when_asked_at_any_depth() {
        let line = r#"{"userId":"u","sessionId":{"a":[1,{"b":null}]},"timestamp":"7",
            "data":{"mail":"x","username":"n","metadata":{"k":"v"}}}"#
            .replace('\n', "");
        let event = lenient(&line).unwrap();
        assert_eq!((event.user_id.as_str(), event.timestamp), ("u", 7));
        let data = event.data.unwrap();
        assert_eq!(data.username.as_deref(), Some("n"));
        assert_eq!(data.metadata, metadata(&[("k", "v")]));
        // Map keys are data, not fields: never dropped.
        assert_eq!(
            lenient(r#"{"data":{"metadata":{"anything":"v"}}}"#)
                .unwrap()
                .data
                .unwrap()
                .metadata
                .len(),
            1
        );
        // Unknown enum values are still refused: they would be sent as a wrong value.
        assert!(lenient(r#"{"eventType":"USER_JUMPED"}"#).is_err());
    }

    #[test]
    fn deeply_nested_input_never_overflows_the_stack() {
        let deep = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        // An unknown field's value, deep as it may be, is skipped without recursing.
        let unknown = format!(r#"{{"sessionId":{}}}"#, deep(100_000));
        assert!(parse_line(&unknown, NOW).is_err());
        assert!(lenient(&unknown).is_ok());
        for line in [
            format!(r#"{{"data":{{"metadata":{{"k":{}}}}}}}"#, deep(100_000)),
            format!(r#"{{"data":{}}}"#, "{\"data\":".repeat(100_000)),
            format!(r#"{{"x":{}}}"#, "{\"x\":".repeat(100_000)),
        ] {
            assert!(parse_line(&line, NOW).is_err(), "{}", &line[..40]);
            assert!(lenient(&line).is_err(), "{}", &line[..40]);
        }
    }

    #[test]
    fn unknown_event_type_names_the_field_and_lists_the_allowed_names() {
        let message = err(r#"{"eventType":"LOGIN"}"#);
        assert!(
            message.starts_with("eventType: unknown variant `LOGIN`")
                && message.contains("USER_LOGOUT"),
            "{message}"
        );
        let message = err(r#"{"event_type":9}"#);
        assert!(message.starts_with("eventType: ") || message.starts_with("event_type: "));
        assert!(message.contains('9'), "{message}");
        let message = err(r#"{"eventType":1.5}"#);
        assert!(
            message.contains("eventType") && message.contains("1.5"),
            "{message}"
        );
    }

    #[test]
    fn wrong_types_are_rejected_naming_the_field() {
        let cases = [
            (
                r#"{"userId":5}"#,
                "userId: invalid type: integer `5`, expected a string",
            ),
            (
                r#"{"user_id":5}"#,
                "user_id: invalid type: integer `5`, expected a string",
            ),
            (
                r#"{"eventId":["a"]}"#,
                "eventId: invalid type: sequence, expected a string",
            ),
            (
                r#"{"data":"x"}"#,
                "data: invalid type: string \"x\", expected struct",
            ),
            (
                r#"{"data":{"email":1}}"#,
                "data.email: invalid type: integer `1`",
            ),
            (
                r#"{"data":{"metadata":["a"]}}"#,
                "data.metadata: invalid type: sequence",
            ),
            (
                r#"{"data":{"metadata":{"ip":1}}}"#,
                "data.metadata.ip: invalid type: integer",
            ),
        ];
        for (line, expected) in cases {
            let message = err(line);
            assert!(message.starts_with(expected), "{line}: {message}");
        }
        for bad in [
            r#""17e11""#,
            "1.5",
            r#""abc""#,
            "9223372036854775808",
            "{}",
            "true",
        ] {
            let message = err(&format!(r#"{{"timestamp":{bad}}}"#));
            assert!(message.starts_with("timestamp: "), "{bad}: {message}");
        }
    }

    #[test]
    fn a_field_given_twice_is_rejected_naming_it() {
        let message = err(r#"{"userId":"a","user_id":"b"}"#);
        assert_eq!(message, "duplicate field `userId`");
        let message = err(r#"{"data":{"email":"a","email":"b"}}"#);
        assert_eq!(message, "data: duplicate field `email`");
    }

    #[test]
    fn non_objects_invalid_json_and_trailing_text_are_rejected() {
        assert!(err("[1,2]").contains("expected struct events.UserEvent"));
        assert!(err("42").contains("expected struct events.UserEvent"));
        assert!(err(r#"{"userId":"#).starts_with("not valid JSON: "));
        assert!(err(r#"{"userId":"a"} {"#).starts_with("not valid JSON: trailing"));
    }

    #[test]
    fn json_has_camel_case_string_int64_enum_name_and_every_field() {
        let event = UserEvent {
            event_id: "e-1".into(),
            timestamp: 1_700_000_000_123,
            user_id: "user-7".into(),
            event_type: EventType::UserLogin as i32,
            data: Some(UserEventData {
                email: None,
                username: Some("a".into()),
                metadata: metadata(&[("ip", "192.0.2.1"), ("source", "web")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            event_to_json(&event),
            json!({
                "eventId": "e-1",
                "timestamp": "1700000000123",
                "userId": "user-7",
                "eventType": "USER_LOGIN",
                "data": {"username": "a", "metadata": {"ip": "192.0.2.1", "source": "web"}}
            })
        );
        assert_eq!(
            to_line(&UserEvent::default()),
            r#"{"eventId":"","timestamp":"0","userId":"","eventType":"UNKNOWN"}"#
        );
    }

    #[test]
    fn an_event_type_number_the_schema_lacks_is_written_as_that_number() {
        let mut generator = Generator::new(3, 10);
        let event = UserEvent {
            event_type: 99,
            ..generator.next_event(NOW)
        };
        let mut out = b"kept".to_vec();
        write_event_json(&event, &mut out).unwrap();
        let written: Value = serde_json::from_slice(&out[4..]).unwrap();
        let mut expected = event_to_json(&UserEvent {
            event_type: EventType::UserLogin as i32,
            ..event.clone()
        });
        expected["eventType"] = json!(99);
        assert_eq!(written, expected);
        assert_eq!(&out[..4], b"kept", "appended");
        assert!(parse_line(std::str::from_utf8(&out[4..]).unwrap(), 0).is_err());
    }

    #[test]
    fn the_reflection_writer_writes_what_the_generated_code_writes() {
        let mut generator = Generator::new(8, 50);
        let mut events: Vec<UserEvent> = (0..300).map(|_| generator.next_event(NOW)).collect();
        events.push(UserEvent::default());
        events.push(UserEvent {
            data: Some(UserEventData::default()),
            ..Default::default()
        });
        for event in events {
            let (mut generated, mut reflected) = (Vec::new(), Vec::new());
            serde_json::to_writer(&mut generated, &event).unwrap();
            write_by_reflection(&event, &mut reflected).unwrap();
            // The same JSON; map entries may come in another order (a hash map's).
            let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
            assert_eq!(parse(&reflected), parse(&generated), "{event:?}");
        }
    }

    #[test]
    fn generated_events_round_trip_exactly_through_json() {
        let mut generator = Generator::new(17, 500);
        for i in 0..2000 {
            let event = generator.next_event(NOW + i);
            let line = to_line(&event);
            assert_eq!(parse_line(&line, 0), Ok(event), "{line}");
        }
    }

    #[test]
    fn edge_case_events_round_trip_exactly_through_json() {
        let base = UserEvent {
            event_id: "id".into(),
            timestamp: 1,
            user_id: "u".into(),
            event_type: EventType::UserLogin as i32,
            ..Default::default()
        };
        let cases = [
            base.clone(),
            UserEvent::default(),
            UserEvent {
                data: Some(UserEventData::default()),
                ..base.clone()
            },
            UserEvent {
                event_type: EventType::Unknown as i32,
                ..base.clone()
            },
            UserEvent {
                event_id: String::new(),
                user_id: String::new(),
                timestamp: i64::MIN,
                ..base.clone()
            },
            UserEvent {
                timestamp: i64::MAX,
                ..base.clone()
            },
            UserEvent {
                user_id: "üser-λ-用户-🦀".into(),
                data: Some(UserEventData {
                    email: Some(String::new()),
                    username: Some("名前 \"quoted\" \\ \n\t\u{0}".into()),
                    metadata: metadata(&[("", ""), ("ключ", "значение 🦀"), ("k\"", "\u{7f}")]),
                    ..Default::default()
                }),
                ..base.clone()
            },
        ];
        for event in cases {
            let line = to_line(&event);
            assert!(
                !line.contains('\n'),
                "one event must stay on one line: {line}"
            );
            assert_eq!(parse_line(&line, 0), Ok(event), "{line}");
        }
    }

    #[test]
    fn reader_skips_blank_lines_strips_crlf_and_numbers_errors_by_input_line() {
        let input = b"{\"userId\":\"a\",\"eventType\":\"USER_LOGIN\"}\r\n\
                      \n   \t \r\n\
                      {\"userId\":7}\r\n\
                      {\"userId\":\"b\",\"timestamp\":\"5\"}";
        let results = read_all(input);
        assert_eq!(results.len(), 3, "{results:?}");
        let first = results[0].as_ref().unwrap();
        assert_eq!((first.user_id.as_str(), first.timestamp), ("a", NOW));
        assert_eq!(
            results[1],
            Err(LineError {
                line: 4,
                message: "userId: invalid type: integer `7`, expected a string".into()
            })
        );
        let last = results[2].as_ref().unwrap();
        assert_eq!((last.user_id.as_str(), last.timestamp), ("b", 5));
    }

    #[test]
    fn reader_reports_invalid_utf8_with_line_and_byte_offset() {
        let input = b"\n{\"userId\":\"ok\"}\n{\"userId\":\"\xff\"}\n{\"userId\":\"fine\"}\n";
        let results = read_all(input);
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[1].as_ref().unwrap_err().to_string(),
            "line 3: not valid UTF-8 (byte offset 11)"
        );
        assert_eq!(results[2].as_ref().unwrap().user_id, "fine");
    }

    #[test]
    fn reader_ignores_a_utf8_byte_order_mark_on_the_first_line() {
        let results = read_all("\u{feff}{\"userId\":\"a\"}\n".as_bytes());
        assert_eq!(results[0].as_ref().unwrap().user_id, "a");
    }

    #[test]
    fn reader_reports_an_io_error_with_its_line_and_then_stops() {
        struct FailsAfter<'a>(&'a [u8]);
        impl Read for FailsAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0.read(buf)
            }
        }
        let reader = FailsAfter(b"{\"userId\":\"a\"}\n{\"user");
        let results: Vec<_> =
            JsonLinesReader::with_clock(reader, ParseOptions::default(), || NOW).collect();
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results[0].is_ok());
        assert_eq!(
            results[1],
            Err(LineError {
                line: 2,
                message: "could not read input: disk on fire".into()
            })
        );
    }

    /// A reader that hands out at most `chunk` bytes per call and counts the calls.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
        calls: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            let n = buf.len().min(self.chunk).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn generated_input(lines: usize) -> (Vec<UserEvent>, Vec<u8>) {
        let mut generator = Generator::new(5, 100);
        let events: Vec<UserEvent> = (0..lines).map(|_| generator.next_event(NOW)).collect();
        let mut input = Vec::new();
        for event in &events {
            write_event_json(event, &mut input).unwrap();
            input.push(b'\n');
        }
        (events, input)
    }

    #[test]
    fn reader_reads_large_blocks_not_lines_and_keeps_lines_split_across_reads() {
        let (events, input) = generated_input(20_000);
        let mut trickle = Trickle {
            data: &input,
            chunk: usize::MAX,
            calls: 0,
        };
        let parsed: Vec<UserEvent> =
            JsonLinesReader::with_clock(&mut trickle, ParseOptions::default(), || NOW)
                .map(Result::unwrap)
                .collect();
        assert_eq!(parsed, events);
        let most = input.len() / READ_BYTES + 2;
        assert!(
            trickle.calls <= most,
            "{} reads for {} bytes, at most {most} expected",
            trickle.calls,
            input.len()
        );

        // A pipe that gives 7 bytes at a time splits nearly every line between reads.
        let first_400_lines = input
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(399)
            .map_or(input.len(), |(at, _)| at + 1);
        let mut trickle = Trickle {
            data: &input[..first_400_lines],
            chunk: 7,
            calls: 0,
        };
        let parsed: Vec<UserEvent> =
            JsonLinesReader::with_clock(&mut trickle, ParseOptions::default(), || NOW)
                .map(Result::unwrap)
                .collect();
        assert_eq!(parsed[..], events[..400]);
    }

    #[test]
    fn asking_whether_a_line_is_buffered_changes_nothing_read() {
        let (events, mut input) = generated_input(300);
        input.extend_from_slice(b"\n{\"userId\":7}\n\n{\"eventId\":\"e\",\"userId\":\"last\"}");
        let mut trickle = Trickle {
            data: &input,
            chunk: 7,
            calls: 0,
        };
        let mut reader = JsonLinesReader::with_clock(&mut trickle, ParseOptions::default(), || NOW);
        let mut results = Vec::new();
        let mut buffered = 0;
        loop {
            // As the reader thread asks: before each item, and twice in a row.
            buffered += usize::from(reader.has_buffered_line());
            buffered += usize::from(reader.has_buffered_line());
            match reader.next() {
                Some(item) => results.push(item),
                None => break,
            }
        }
        let expected = read_all(&input);
        assert_eq!(results.len(), expected.len());
        assert_eq!(results.len(), events.len() + 2);
        if let Some(at) = (0..results.len()).find(|&at| results[at] != expected[at]) {
            panic!(
                "item {at}: {:?}, read alone: {:?}",
                results[at], expected[at]
            );
        }
        assert!(buffered > 0, "no line was ever buffered");
    }

    static CLOCK_READS: AtomicUsize = AtomicUsize::new(0);

    fn counting_clock() -> i64 {
        CLOCK_READS.fetch_add(1, Ordering::SeqCst);
        NOW
    }

    #[test]
    fn reader_reads_the_clock_once_per_block_not_once_per_line() {
        let line = "{\"userId\":\"u\",\"eventType\":\"USER_LOGIN\"}\n";
        let input = line.repeat(50_000);
        let reader = Cursor::new(input.as_bytes());
        let parsed: Vec<_> =
            JsonLinesReader::with_clock(reader, ParseOptions::default(), counting_clock).collect();
        assert_eq!(parsed.len(), 50_000);
        assert!(parsed.iter().all(|e| e.as_ref().unwrap().timestamp == NOW));
        let reads = CLOCK_READS.load(Ordering::SeqCst);
        let blocks = input.len() / READ_BYTES + 1;
        assert!(
            (1..=blocks).contains(&reads),
            "{reads} clock reads for {blocks} blocks of 50,000 lines"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_reported_and_skipped_without_being_kept() {
        let max_line_bytes = 1000;
        let mut input = b"{\"userId\":\"a\"}\n{\"userId\":\"".to_vec();
        input.resize(input.len() + 3 * READ_BYTES, b'x');
        input.extend_from_slice(b"\"}\n{\"userId\":\"c\"}\n");
        let mut reader =
            JsonLinesReader::with_clock(Cursor::new(&input), ParseOptions::default(), || NOW);
        reader.max_line_bytes = max_line_bytes;
        let results: Vec<_> = reader.by_ref().collect();
        assert!(
            reader.buf.len() <= 2 * READ_BYTES + max_line_bytes,
            "the long line was kept: {} bytes buffered",
            reader.buf.len()
        );
        assert_eq!(
            results.len(),
            3,
            "{:?}",
            results.iter().map(|r| r.is_ok()).collect::<Vec<_>>()
        );
        let error = results[1].as_ref().unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.starts_with("longer than "), "{error}");
        assert_eq!(results[2].as_ref().unwrap().user_id, "c");
    }

    #[test]
    fn line_error_displays_as_line_number_and_message() {
        let e = LineError {
            line: 12,
            message: "userId: expected a string, found null".into(),
        };
        assert_eq!(
            e.to_string(),
            "line 12: userId: expected a string, found null"
        );
    }

    /// Bytes with JSON's punctuation, digits, escapes, and bytes that are not UTF-8.
    const JSONISH: &[u8] = b"{}[]\":,0123456789-.eE+ \t\\ntruefalsnul\xc3\xa9\xff\r";

    /// A valid line from the generator, with `edits` applied: (position, byte, kind).
    fn mutated_line(seed: u64, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut line = to_line(&Generator::new(seed, 100).next_event(NOW)).into_bytes();
        for &(at, byte, kind) in edits {
            let at = at % (line.len() + 1);
            let byte = JSONISH[byte as usize % JSONISH.len()];
            match kind % 3 {
                0 if at < line.len() => {
                    line.remove(at);
                }
                1 if at < line.len() => line[at] = byte,
                _ => line.insert(at, byte),
            }
        }
        line
    }

    /// Whatever the line, parsing returns; a line that parses writes back as JSON that
    /// parses to the same event.
    fn check_line(bytes: &[u8]) -> Result<(), TestCaseError> {
        for ignore_unknown_fields in [false, true] {
            let options = ParseOptions {
                ignore_unknown_fields,
            };
            let parser = LineParser::new(options);
            if let Ok(text) = std::str::from_utf8(bytes)
                && let Ok(event) = parser.parse(text, || NOW)
                && let Ok(()) = write_event_json(&event, &mut Vec::new())
            {
                let again = parser.parse(&to_line(&event), || 0);
                prop_assert_eq!(again, Ok(event));
            }
            let results: Vec<_> =
                JsonLinesReader::with_clock(Cursor::new(bytes), options, || NOW).collect();
            let lines = bytes.split(|b| *b == b'\n').count();
            prop_assert!(results.len() <= lines);
        }
        if let Ok(line) = std::str::from_utf8(bytes) {
            check_fast_path_agrees(line)?;
        }
        Ok(())
    }

    /// The fast path changes nothing: where the generated code alone accepts the line, the
    /// adapter reads the same event and the same given fields; and `parse` returns what
    /// the adapter decides, errors word for word. Returns whether the fast path took it.
    fn check_fast_path_agrees(line: &str) -> Result<bool, TestCaseError> {
        let mut fast = false;
        for ignore_unknown_fields in [false, true] {
            let parser = LineParser::new(ParseOptions {
                ignore_unknown_fields,
            });
            if let Some(parsed) = parser.parse_fast(line) {
                fast = true;
                prop_assert_eq!(Ok(parsed), parser.parse_lenient(line), "{}", line);
            }
            match (parser.parse(line, || NOW), parser.parse_lenient(line)) {
                (Err(error), Err(expected)) => prop_assert_eq!(error, expected, "{}", line),
                (Ok(mut event), Ok(expected)) => {
                    // Only the defaults may differ: a fresh id, the clock.
                    if !expected.event_id_given {
                        prop_assert!(Uuid::parse_str(&event.event_id).is_ok(), "{:?}", event);
                        event.event_id.clear();
                    }
                    if !expected.timestamp_given {
                        prop_assert_eq!(event.timestamp, NOW);
                        event.timestamp = expected.event.timestamp;
                    }
                    prop_assert_eq!(event, expected.event, "{}", line);
                }
                (got, expected) => {
                    prop_assert!(false, "{line}\nparse: {got:?}\nadapter: {expected:?}")
                }
            }
        }
        Ok(fast)
    }

    /// Values an edit puts in place of another: every JSON type, numbers written the ways
    /// parsers disagree on (zero, signs, exponents, the 64-bit limits, in strings), enum
    /// numbers, and the empty and null values whose presence decides a default.
    const REPLACEMENTS: &[&str] = &[
        "null",
        "\"\"",
        "0",
        "-0",
        "\"0\"",
        "\"-0\"",
        "0.0",
        "1",
        "\"1\"",
        "-1",
        "1.5",
        "1e3",
        "\"1e3\"",
        "\" 1\"",
        "9223372036854775807",
        "\"9223372036854775807\"",
        "9223372036854775808",
        "\"-9223372036854775809\"",
        "2",
        "99",
        "\"2\"",
        "true",
        "[]",
        "[\"a\"]",
        "[null]",
        "{}",
        "{\"a\":\"b\"}",
        "{\"a\":null}",
        "{\"a\":1}",
        "\"x\"",
        "\"\\u0041\\n\"",
        "\"\\ud800\"",
    ];

    /// `"eventId"` as its proto name, `"event_id"`; other keys unchanged.
    fn proto_name(key: &str) -> String {
        let mut out = String::new();
        for c in key.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// A generated event's line with structural edits (object, kind, entry, choice): keys
    /// removed, renamed to proto names, escaped, duplicated or unknown; values replaced
    /// by [`REPLACEMENTS`] or by another entry's value; in any object of the line.
    fn edited_line(seed: u64, optional: bool, edits: &[(usize, u8, usize, usize)]) -> String {
        let mut event = Generator::new(seed, 100).next_event(NOW);
        if optional && let Some(data) = event.data.as_mut() {
            data.email = Some(format!("{}@example.com", event.user_id));
            data.username = Some(String::new());
        }
        let mut json = Json::from_value(&event_to_json(&event));
        for &(object, kind, at, choice) in edits {
            let mut n = object % json.objects();
            let Some(entries) = json.nth_object(&mut n) else {
                continue;
            };
            let len = entries.len();
            let replacement = || Json::Text(REPLACEMENTS[choice % REPLACEMENTS.len()].into());
            if len == 0 {
                entries.push(("\"a\"".into(), replacement()));
                continue;
            }
            let at = at % len;
            match kind % 8 {
                0 => {
                    entries.remove(at);
                }
                1 => entries[at].1 = replacement(),
                2 => entries[at].0 = proto_name(&entries[at].0),
                3 => {
                    // The first letter as a \u escape: the same key to a JSON parser.
                    let key = &entries[at].0;
                    if let Some(first) = key[1..].chars().next().filter(char::is_ascii_alphabetic) {
                        entries[at].0 = format!("\"\\u{:04x}{}", first as u32, &key[2..]);
                    }
                }
                4 => {
                    let unknown = format!("{}x\"", &entries[at].0[..entries[at].0.len() - 1]);
                    entries.insert(choice % (len + 1), (unknown, replacement()));
                }
                5 => {
                    let copy = entries[at].clone();
                    entries.insert(choice % (len + 1), copy);
                }
                6 => entries[at].1 = entries[choice % len].1.clone(),
                _ => entries[at].1 = Json::Text("null".into()),
            }
        }
        let mut line = String::new();
        json.write(seed % 2 == 0, &mut line);
        line
    }

    // Cases per property: 256 under `cargo test`; `make fuzz` sets PROPTEST_CASES higher.
    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_parser(
            bytes in proptest::collection::vec(any::<u8>(), 0..400)
        ) {
            check_line(&bytes)?;
        }

        #[test]
        fn jsonish_bytes_never_panic_the_parser(
            bytes in proptest::collection::vec(proptest::sample::select(JSONISH), 0..200)
        ) {
            check_line(&bytes)?;
        }

        #[test]
        fn the_fast_path_reads_edited_lines_as_the_adapter_does(
            seed in any::<u64>(),
            optional in any::<bool>(),
            edits in proptest::collection::vec(
                (any::<usize>(), any::<u8>(), any::<usize>(), any::<usize>()),
                0..5,
            )
        ) {
            check_fast_path_agrees(&edited_line(seed, optional, &edits))?;
        }

        #[test]
        fn mutated_valid_lines_never_panic_the_parser(
            seed in any::<u64>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)
        ) {
            check_line(&mutated_line(seed, &edits))?;
        }
    }

    #[test]
    fn written_and_hand_written_lines_take_the_fast_path() {
        let mut generator = Generator::new(3, 100);
        let parser = LineParser::default();
        for _ in 0..500 {
            let line = to_line(&generator.next_event(NOW));
            assert!(parser.parse_fast(&line).is_some(), "{line}");
        }
        // The shapes a person writes: defaults left out, proto names, numbers for enums
        // and 64-bit integers, a null message, spaces.
        for line in [
            r#"{"userId":"u","eventType":"USER_LOGIN"}"#,
            r#"{"user_id":"u","event_type":2,"timestamp":1700000000000}"#,
            r#" { "eventId" : "" , "timestamp" : "0" , "data" : null } "#,
            r#"{"event_id":"e","data":{"email":null,"metadata":{}}}"#,
        ] {
            assert!(parser.parse_fast(line).is_some(), "{line}");
        }
    }

    #[test]
    fn the_fast_path_leaves_nulls_unknown_fields_and_errors_to_the_adapter() {
        let parser = LineParser::new(ParseOptions {
            ignore_unknown_fields: true,
        });
        for line in [
            r#"{"eventId":null}"#,
            r#"{"timestamp":null}"#,
            r#"{"userId":null,"eventType":null}"#,
            r#"{"data":{"metadata":null}}"#,
            r#"{"userId":"u","colour":"blue"}"#,
            r#"{"data":{"colour":"blue"}}"#,
            r#"{"userId":"u","userId":"v"}"#,
            r#"{"eventId":"a","event_id":"b"}"#,
            r#"{"eventType":"NO_SUCH_TYPE"}"#,
            r#"{"userId":"u"} x"#,
            r#"["userId"]"#,
        ] {
            assert_eq!(parser.parse_fast(line), None, "{line}");
        }
    }

    #[test]
    fn the_fast_path_tells_a_missing_default_from_an_empty_one_as_the_adapter_does() {
        let parser = LineParser::default();
        // (line, eventId given, timestamp given)
        for (line, event_id_given, timestamp_given) in [
            (r#"{"userId":"u"}"#, false, false),
            (r#"{"eventId":"","timestamp":0}"#, true, true),
            (r#"{"event_id":"","timestamp":"-0"}"#, true, true),
            (r#"{"\u0065ventId":"","time\u0073tamp":"0"}"#, true, true),
            (
                r#"{"data":{"metadata":{"eventId":"x","timestamp":"1"}}}"#,
                false,
                false,
            ),
        ] {
            let parsed = parser.parse_fast(line).expect(line);
            assert_eq!(
                (parsed.event_id_given, parsed.timestamp_given),
                (event_id_given, timestamp_given),
                "{line}"
            );
            assert_eq!(Ok(parsed), parser.parse_lenient(line), "{line}");
        }
    }

    /// The edited lines of the property below reach both paths, so that it compares them.
    #[test]
    fn edited_lines_are_often_taken_by_the_fast_path_and_often_not() {
        let mut state = 7u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut fast, mut total) = (0, 0);
        for _ in 0..300 {
            let edits: Vec<_> = (0..next() % 4)
                .map(|_| {
                    (
                        next() as usize,
                        next() as u8,
                        next() as usize,
                        next() as usize,
                    )
                })
                .collect();
            let line = edited_line(next(), next() % 2 == 0, &edits);
            total += 1;
            fast += usize::from(check_fast_path_agrees(&line).unwrap());
        }
        assert!(
            (total / 5..total * 4 / 5).contains(&fast),
            "{fast} of {total} edited lines took the fast path"
        );
    }

    /// A JSON value with its objects kept as lists of entries (key as written, quotes and
    /// escapes included), so that edits can make what a JSON value cannot hold: duplicate
    /// keys, escaped keys, numbers written any way.
    #[derive(Debug, Clone)]
    enum Json {
        Object(Vec<(String, Json)>),
        /// Any other value, as JSON text.
        Text(String),
    }

    impl Json {
        fn from_value(value: &Value) -> Json {
            match value {
                Value::Object(entries) => Json::Object(
                    entries
                        .iter()
                        .map(|(k, v)| (Value::from(k.as_str()).to_string(), Json::from_value(v)))
                        .collect(),
                ),
                other => Json::Text(other.to_string()),
            }
        }

        fn write(&self, spaced: bool, out: &mut String) {
            match self {
                Json::Text(text) => out.push_str(text),
                Json::Object(entries) => {
                    out.push('{');
                    for (at, (key, value)) in entries.iter().enumerate() {
                        if at > 0 {
                            out.push(',');
                        }
                        out.push_str(if spaced { " " } else { "" });
                        out.push_str(key);
                        out.push_str(if spaced { " : " } else { ":" });
                        value.write(spaced, out);
                    }
                    out.push('}');
                }
            }
        }

        fn objects(&self) -> usize {
            match self {
                Json::Text(_) => 0,
                Json::Object(entries) => {
                    1 + entries.iter().map(|(_, v)| v.objects()).sum::<usize>()
                }
            }
        }

        /// The `n`th object in pre-order: the top level first, then nested messages and
        /// maps.
        fn nth_object(&mut self, n: &mut usize) -> Option<&mut Vec<(String, Json)>> {
            let Json::Object(entries) = self else {
                return None;
            };
            if *n == 0 {
                return Some(entries);
            }
            *n -= 1;
            for (_, value) in entries.iter_mut() {
                if let Some(found) = value.nth_object(n) {
                    return Some(found);
                }
            }
            None
        }
    }

    #[test]
    fn garbage_input_never_panics_and_errors_carry_the_right_line_number() {
        let mut state = 99u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut input = Vec::new();
        let mut non_blank_lines = Vec::new();
        for line_number in 1..=5000 {
            let edits: Vec<(usize, u8, u8)> = (0..next() % 6)
                .map(|_| (next() as usize, next() as u8, next() as u8))
                .collect();
            let mut line = if next() % 3 == 0 {
                (0..next() % 80).map(|_| next() as u8).collect()
            } else {
                mutated_line(next(), &edits)
            };
            line.retain(|b| *b != b'\n');
            let content = if line_number == 1 {
                line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&line)
            } else {
                &line
            };
            if !content.iter().all(u8::is_ascii_whitespace) {
                non_blank_lines.push(line_number);
            }
            input.extend_from_slice(&line);
            input.extend_from_slice(if next() % 2 == 0 { b"\n" } else { b"\r\n" });
        }
        let results = read_all(&input);
        assert_eq!(
            results.len(),
            non_blank_lines.len(),
            "one result per non-blank line"
        );
        let mut errors = 0;
        for (result, line_number) in results.iter().zip(&non_blank_lines) {
            if let Err(e) = result {
                errors += 1;
                assert_eq!(e.line, *line_number, "{e}");
                assert!(!e.message.is_empty());
            }
        }
        assert!(
            errors > 1000,
            "the garbage should mostly be rejected, got {errors} errors"
        );
    }
}
