//! Reads and writes `UserEvent`s as JSON lines in the protobuf JSON mapping (proto3 canonical JSON).
//! Fed lines by stdin or a file from the command line; feeds parsed events to the encoder and producer, and prints events for scripts and dumps.
//!
//! One line is one event, for example
//!
//! ```text
//! {"eventId":"0b0e...","timestamp":"1700000000000","userId":"user-7","eventType":"USER_LOGIN","data":{"metadata":{"source":"web"}}}
//! ```
//!
//! Input is read as protobuf JSON parsers read it: lowerCamelCase (`userId`) and proto
//! (`user_id`) field names, `timestamp` as a number or a decimal string, `eventType` as a name
//! or a number, `null` for "not set". It is stricter than some parsers in one way: an unknown
//! field or enum value is an error naming it, never silently dropped, because a misspelt field
//! on the way into Kafka is a bug better caught at the first line.

use std::fmt;
use std::io::BufRead;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::{EventType, UserEvent, UserEventData};

/// Every `EventType`, in number order, for error messages and number lookups.
const EVENT_TYPES: [EventType; 4] = [
    EventType::Unknown,
    EventType::UserRegistered,
    EventType::UserLogin,
    EventType::UserLogout,
];

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

/// Iterates over the events of a JSON lines stream, one `Result` per non-blank line.
///
/// Lines end with `\n` or `\r\n`; blank and whitespace-only lines are skipped (but counted). A
/// bad line gives an `Err` and reading goes on with the next line, so a caller can report every
/// bad line of a file at once. A read error also gives an `Err` with the line it happened on,
/// and ends the iteration, since a failing reader rarely recovers. Never panics on any input.
pub struct JsonLinesReader<R: BufRead> {
    /// Where lines come from.
    reader: R,
    /// Number of the last line read (0 before the first), for error messages.
    line: usize,
    /// Gives "now" in milliseconds since the epoch for lines without a `timestamp`; a function
    /// rather than the system clock so tests are deterministic.
    clock: fn() -> i64,
    /// Set after a read error, so a broken reader is not polled forever.
    done: bool,
    /// Reused line buffer, so reading does not allocate per line.
    buf: Vec<u8>,
}

impl<R: BufRead> JsonLinesReader<R> {
    /// A reader that stamps lines without a `timestamp` with the current system time.
    pub fn new(reader: R) -> Self {
        Self::with_clock(reader, || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since_epoch| since_epoch.as_millis() as i64)
        })
    }

    /// A reader that takes "now" (milliseconds since the epoch) from `clock`, called once per
    /// line that has no `timestamp`.
    pub fn with_clock(reader: R, clock: fn() -> i64) -> Self {
        JsonLinesReader {
            reader,
            line: 0,
            clock,
            done: false,
            buf: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for JsonLinesReader<R> {
    type Item = Result<UserEvent, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(LineError {
                        line: self.line + 1,
                        message: format!("could not read input: {e}"),
                    }));
                }
            }
            self.line += 1;
            let mut bytes = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if self.line == 1 {
                // A UTF-8 byte order mark, as some Windows editors write: not part of the JSON.
                bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.line;
            let result = match std::str::from_utf8(bytes) {
                Ok(text) => parse_line(text, (self.clock)()),
                Err(e) => Err(format!("not valid UTF-8 (byte offset {})", e.valid_up_to())),
            };
            return Some(result.map_err(|message| LineError { line, message }));
        }
        None
    }
}

/// Parses one line holding one `UserEvent` in the protobuf JSON mapping.
///
/// A missing `eventId` becomes a fresh UUIDv4 and a missing `timestamp` becomes `now_ms`, so
/// hand-written lines need only `userId` and `eventType`. A missing `eventType` is `UNKNOWN`
/// and a missing `userId` is empty, as in protobuf. The error names the field at fault.
pub fn parse_line(line: &str, now_ms: i64) -> Result<UserEvent, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err(format!(
            "expected a JSON object (one event), found {}",
            describe(&value)
        ));
    };

    let mut event_id = None;
    let mut timestamp = None;
    let mut user_id = None;
    let mut event_type = None;
    let mut data = None;
    let mut seen: [Option<&str>; 5] = [None; 5];
    for (key, value) in &object {
        let (slot, field) = match key.as_str() {
            "eventId" | "event_id" => (0, "eventId"),
            "timestamp" => (1, "timestamp"),
            "userId" | "user_id" => (2, "userId"),
            "eventType" | "event_type" => (3, "eventType"),
            "data" => (4, "data"),
            other => {
                return Err(format!(
                    "unknown field \"{other}\": a UserEvent has eventId, timestamp, userId, \
                     eventType and data"
                ));
            }
        };
        if let Some(first) = seen[slot].replace(key) {
            return Err(format!(
                "{field} given twice (as \"{first}\" and \"{key}\")"
            ));
        }
        if value.is_null() {
            // Protobuf JSON: null means the field is not set.
            continue;
        }
        match slot {
            0 => event_id = Some(string(value, field)?),
            1 => timestamp = Some(int64(value, field)?),
            2 => user_id = Some(string(value, field)?),
            3 => event_type = Some(enum_value(value, field)?),
            _ => data = Some(user_event_data(value)?),
        }
    }

    Ok(UserEvent {
        event_id: event_id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        timestamp: timestamp.unwrap_or(now_ms),
        user_id: user_id.unwrap_or_default(),
        event_type: event_type.unwrap_or(EventType::Unknown) as i32,
        data,
    })
}

/// Parses the `data` object (`UserEventData`).
fn user_event_data(value: &Value) -> Result<UserEventData, String> {
    let Value::Object(object) = value else {
        return Err(format!(
            "data: expected an object, found {}",
            describe(value)
        ));
    };
    let mut data = UserEventData::default();
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "email" => data.email = Some(string(value, "data.email")?),
            "username" => data.username = Some(string(value, "data.username")?),
            "metadata" => data.metadata = metadata(value)?,
            other => {
                return Err(format!(
                    "data: unknown field \"{other}\": UserEventData has email, username and \
                     metadata"
                ));
            }
        }
    }
    Ok(data)
}

/// Parses `data.metadata`, a `map<string, string>`: a JSON object of strings.
fn metadata(value: &Value) -> Result<std::collections::BTreeMap<String, String>, String> {
    let Value::Object(object) = value else {
        return Err(format!(
            "data.metadata: expected an object of strings, found {}",
            describe(value)
        ));
    };
    object
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(format!(
                "data.metadata.{key}: expected a string, found {}",
                describe(other)
            )),
        })
        .collect()
}

fn string(value: &Value, field: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "{field}: expected a string, found {}",
            describe(other)
        )),
    }
}

/// An `int64` in the JSON mapping: an integer number or a decimal string.
fn int64(value: &Value, field: &str) -> Result<i64, String> {
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        format!(
            "{field}: expected an integer (milliseconds since the epoch) as a number or a \
             decimal string, within the int64 range, found {}",
            describe(value)
        )
    })
}

/// An `EventType` in the JSON mapping: its name, or its number.
fn enum_value(value: &Value, field: &str) -> Result<EventType, String> {
    let names = || {
        EVENT_TYPES
            .iter()
            .map(|t| format!("{} ({})", t.as_str_name(), *t as i32))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value {
        Value::String(name) => EventType::from_str_name(name).ok_or_else(|| {
            format!(
                "{field}: unknown event type \"{name}\"; expected one of {}",
                names()
            )
        }),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(|n| EventType::try_from(n).ok())
            .ok_or_else(|| {
                format!(
                    "{field}: unknown event type number {n}; expected one of {}",
                    names()
                )
            }),
        other => Err(format!(
            "{field}: expected an event type name or number, found {}",
            describe(other)
        )),
    }
}

/// A short description of a JSON value for error messages: its kind and, if short, itself.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => return "an array".to_string(),
        Value::Object(_) => return "an object".to_string(),
    };
    let text = value.to_string();
    if text.chars().count() <= 40 {
        format!("{kind} ({text})")
    } else {
        kind.to_string()
    }
}

/// The event in the canonical protobuf JSON mapping, which [`parse_line`] reads back into the
/// same event: lowerCamelCase names, the int64 `timestamp` as a decimal string, `eventType` by
/// name, and fields holding their default value left out (`eventType` `UNKNOWN`, empty
/// `metadata`, unset `email`/`username`/`data`).
///
/// One deliberate departure from the spec: `eventId`, `userId` and `timestamp` are always
/// written, even when empty or 0, because a person reading a dump looks for them on every line.
/// Parsers accept either form. An `event_type` number outside `EventType` is written as that
/// number, as the spec says; [`parse_line`] rejects it, since no such event should be sent.
pub fn event_to_json(event: &UserEvent) -> Value {
    let mut object = Map::new();
    object.insert("eventId".into(), Value::String(event.event_id.clone()));
    object.insert(
        "timestamp".into(),
        Value::String(event.timestamp.to_string()),
    );
    object.insert("userId".into(), Value::String(event.user_id.clone()));
    if event.event_type != EventType::Unknown as i32 {
        let value = match EventType::try_from(event.event_type) {
            Ok(t) => Value::String(t.as_str_name().to_string()),
            Err(_) => Value::from(event.event_type),
        };
        object.insert("eventType".into(), value);
    }
    if let Some(data) = &event.data {
        let mut fields = Map::new();
        if let Some(email) = &data.email {
            fields.insert("email".into(), Value::String(email.clone()));
        }
        if let Some(username) = &data.username {
            fields.insert("username".into(), Value::String(username.clone()));
        }
        if !data.metadata.is_empty() {
            let metadata = data
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            fields.insert("metadata".into(), Value::Object(metadata));
        }
        object.insert("data".into(), Value::Object(fields));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{self, BufReader, Cursor, Read};

    use serde_json::json;

    use super::*;
    use crate::generator::Generator;

    const NOW: i64 = 1_700_000_000_000;

    fn read_all(input: &[u8]) -> Vec<Result<UserEvent, LineError>> {
        JsonLinesReader::with_clock(Cursor::new(input.to_vec()), || NOW).collect()
    }

    fn err(line: &str) -> String {
        parse_line(line, NOW).expect_err("line should be rejected")
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
            }),
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
            data: None,
        };
        assert_eq!(parse_line(line, NOW), Ok(expected));
    }

    #[test]
    fn missing_event_id_becomes_fresh_uuid_v4_and_missing_timestamp_becomes_now() {
        let a = parse_line(r#"{"userId":"u","eventType":"USER_LOGIN"}"#, NOW).unwrap();
        let b = parse_line(r#"{"userId":"u","eventType":"USER_LOGIN"}"#, NOW).unwrap();
        assert_eq!(a.timestamp, NOW);
        let id = Uuid::parse_str(&a.event_id).expect("a UUID");
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert_ne!(a.event_id, b.event_id, "each line gets its own id");
    }

    #[test]
    fn null_fields_count_as_not_set() {
        let line = r#"{"eventId":null,"timestamp":null,"userId":null,"eventType":null,
            "data":{"email":null,"username":null,"metadata":null}}"#
            .replace('\n', "");
        let event = parse_line(&line, NOW).unwrap();
        assert_eq!(event.timestamp, NOW);
        assert_eq!(event.user_id, "");
        assert_eq!(event.event_type, EventType::Unknown as i32);
        assert_eq!(event.data, Some(UserEventData::default()));
        assert_eq!(parse_line(r#"{"data":null}"#, NOW).unwrap().data, None);
    }

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        assert_eq!(
            err(r#"{"userId":"u","user":"x"}"#),
            "unknown field \"user\": a UserEvent has eventId, timestamp, userId, eventType and data"
        );
        assert_eq!(
            err(r#"{"data":{"mail":"x"}}"#),
            "data: unknown field \"mail\": UserEventData has email, username and metadata"
        );
    }

    #[test]
    fn unknown_event_type_lists_the_allowed_names() {
        let allowed = "UNKNOWN (0), USER_REGISTERED (1), USER_LOGIN (2), USER_LOGOUT (3)";
        assert_eq!(
            err(r#"{"eventType":"LOGIN"}"#),
            format!("eventType: unknown event type \"LOGIN\"; expected one of {allowed}")
        );
        assert_eq!(
            err(r#"{"event_type":9}"#),
            format!("eventType: unknown event type number 9; expected one of {allowed}")
        );
        assert_eq!(
            err(r#"{"eventType":1.5}"#),
            format!("eventType: unknown event type number 1.5; expected one of {allowed}")
        );
    }

    #[test]
    fn wrong_types_are_rejected_naming_the_field() {
        assert_eq!(
            err(r#"{"userId":5}"#),
            "userId: expected a string, found a number (5)"
        );
        assert_eq!(
            err(r#"{"eventId":["a"]}"#),
            "eventId: expected a string, found an array"
        );
        assert_eq!(
            err(r#"{"eventType":true}"#),
            "eventType: expected an event type name or number, found a boolean (true)"
        );
        assert_eq!(
            err(r#"{"data":"x"}"#),
            "data: expected an object, found a string (\"x\")"
        );
        assert_eq!(
            err(r#"{"data":{"email":1}}"#),
            "data.email: expected a string, found a number (1)"
        );
        assert_eq!(
            err(r#"{"data":{"metadata":["a"]}}"#),
            "data.metadata: expected an object of strings, found an array"
        );
        assert_eq!(
            err(r#"{"data":{"metadata":{"ip":1}}}"#),
            "data.metadata.ip: expected a string, found a number (1)"
        );
        for bad in [r#""17e11""#, "1.5", r#""abc""#, "9223372036854775808", "{}"] {
            let message = err(&format!(r#"{{"timestamp":{bad}}}"#));
            assert!(
                message
                    .starts_with("timestamp: expected an integer (milliseconds since the epoch)"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn a_field_given_under_both_names_is_rejected() {
        assert_eq!(
            err(r#"{"userId":"a","user_id":"b"}"#),
            "userId given twice (as \"userId\" and \"user_id\")"
        );
    }

    #[test]
    fn non_objects_and_invalid_json_are_rejected() {
        assert_eq!(
            err("[1,2]"),
            "expected a JSON object (one event), found an array"
        );
        assert_eq!(
            err("42"),
            "expected a JSON object (one event), found a number (42)"
        );
        assert!(err(r#"{"userId":"#).starts_with("not valid JSON: "));
    }

    #[test]
    fn canonical_json_has_camel_case_string_timestamp_and_enum_name() {
        let event = UserEvent {
            event_id: "e-1".into(),
            timestamp: 1_700_000_000_123,
            user_id: "user-7".into(),
            event_type: EventType::UserLogin as i32,
            data: Some(UserEventData {
                email: None,
                username: Some("a".into()),
                metadata: metadata(&[("ip", "192.0.2.1"), ("source", "web")]),
            }),
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
    }

    #[test]
    fn canonical_json_omits_defaults_but_keeps_event_id_user_id_and_timestamp() {
        let event = UserEvent {
            event_id: String::new(),
            timestamp: 0,
            user_id: String::new(),
            event_type: EventType::Unknown as i32,
            data: None,
        };
        assert_eq!(
            event_to_json(&event),
            json!({"eventId": "", "timestamp": "0", "userId": ""})
        );
    }

    #[test]
    fn generated_events_round_trip_exactly_through_json() {
        let mut generator = Generator::new(17, 500);
        for i in 0..2000 {
            let event = generator.next_event(NOW + i);
            let line = event_to_json(&event).to_string();
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
            data: None,
        };
        let cases = [
            base.clone(),
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
                }),
                ..base.clone()
            },
        ];
        for event in cases {
            let line = event_to_json(&event).to_string();
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
                message: "userId: expected a string, found a number (7)".into()
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
                let n = self.0.read(buf)?;
                Ok(n)
            }
        }
        let reader = BufReader::new(FailsAfter(b"{\"userId\":\"a\"}\n{\"user"));
        let results: Vec<_> = JsonLinesReader::with_clock(reader, || NOW).collect();
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

    /// Splitmix64, to make reproducible garbage.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A line that is random bytes, or a valid event line with random JSON-ish edits.
    fn garbage_line(state: &mut u64, valid: &str) -> Vec<u8> {
        const JSONISH: &[u8] = b"{}[]\":,0123456789-.eE+ \t\\ntruefalsnul\xc3\xa9\xff\r";
        let mut line = if next(state) % 3 == 0 {
            let len = next(state) % 80;
            (0..len).map(|_| next(state) as u8).collect()
        } else {
            valid.as_bytes().to_vec()
        };
        for _ in 0..next(state) % 6 {
            let at = (next(state) as usize) % (line.len() + 1);
            match next(state) % 3 {
                0 if at < line.len() => {
                    line.remove(at);
                }
                1 if at < line.len() => line[at] = JSONISH[next(state) as usize % JSONISH.len()],
                _ => line.insert(at, JSONISH[next(state) as usize % JSONISH.len()]),
            }
        }
        line.retain(|b| *b != b'\n');
        line
    }

    #[test]
    fn garbage_input_never_panics_and_errors_carry_the_right_line_number() {
        let mut state = 99;
        let mut generator = Generator::new(1, 100);
        let mut input = Vec::new();
        let mut non_blank_lines = Vec::new();
        for line_number in 1..=5000 {
            let valid = event_to_json(&generator.next_event(NOW)).to_string();
            let line = garbage_line(&mut state, &valid);
            // A \r the reader strips as part of a line ending is whitespace anyway.
            let content = if line_number == 1 {
                line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&line)
            } else {
                &line
            };
            if !content.iter().all(u8::is_ascii_whitespace) {
                non_blank_lines.push(line_number);
            }
            // Also feed every line to parse_line directly when it is UTF-8.
            if let Ok(text) = std::str::from_utf8(&line) {
                let _ = parse_line(text, NOW);
            }
            input.extend_from_slice(&line);
            input.extend_from_slice(if next(&mut state) % 2 == 0 {
                b"\n"
            } else {
                b"\r\n"
            });
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
