//! Turns one `UserEvent` into the Kafka record the original producer wrote.
//! Fed by the caller of `Producer::send`; feeds the accumulator.
//!
//! value = protobuf bytes, key = `user_id`, one header `event-type` = the enum name,
//! timestamp = the event's `timestamp` (ms). Existing consumers depend on this shape.

use prost::Message;

use crate::event::{EventType, UserEvent};

/// The header that names the event type, as the original producer set it.
pub const EVENT_TYPE_HEADER: &str = "event-type";

/// Bytes a record adds to a v2 record batch besides key, value and header bytes
/// (length, attributes, deltas, varint lengths, header count): 12-20 for events of
/// ordinary size and timestamps close together, so the buffer counts a little more
/// than the framing takes.
const RECORD_OVERHEAD_BYTES: usize = 24;

/// The enum name of an event's type; numbers this build does not know read as `UNKNOWN`,
/// as prost decodes them.
pub fn event_type_name(event: &UserEvent) -> &'static str {
    EventType::try_from(event.event_type)
        .unwrap_or(EventType::Unknown)
        .as_str_name()
}

/// An event encoded for Kafka, on its way from `send` to its partition's worker, which
/// frames it into the open batch (`record_batch`) and frees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub event_type: &'static str,
    pub timestamp_ms: i64,
}

impl EncodedEvent {
    pub fn new(event: &UserEvent) -> Self {
        Self {
            key: event.user_id.as_bytes().to_vec(),
            value: event.encode_to_vec(),
            event_type: event_type_name(event),
            timestamp_ms: event.timestamp,
        }
    }

    /// `new` for an event the caller is done with: its `user_id` becomes the key without
    /// a copy, and the rest is freed on the caller's thread, where it was allocated.
    pub fn from_event(mut event: UserEvent) -> Self {
        let value = event.encode_to_vec();
        Self {
            key: std::mem::take(&mut event.user_id).into_bytes(),
            value,
            event_type: event_type_name(&event),
            timestamp_ms: event.timestamp,
        }
    }

    /// The bytes the record takes in a batch before compression: what the buffer and
    /// the batch byte cap count.
    pub fn size(&self) -> usize {
        RECORD_OVERHEAD_BYTES
            + self.key.len()
            + self.value.len()
            + EVENT_TYPE_HEADER.len()
            + self.event_type.len()
    }
}

#[cfg(test)]
#[allow(
    clippy::needless_update,
    reason = "event literals end with ..Default::default() so that a field added to the schema builds"
)]
mod tests {
    use super::*;
    use crate::event::UserEventData;

    #[test]
    fn record_has_user_id_key_event_type_header_and_protobuf_value() {
        let event = UserEvent {
            event_id: "e1".into(),
            timestamp: 1_700_000_000_123,
            user_id: "user-42".into(),
            event_type: EventType::UserLogout as i32,
            data: Some(UserEventData {
                username: Some("bob".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let record = EncodedEvent::new(&event);
        assert_eq!(EncodedEvent::from_event(event.clone()), record);
        assert_eq!(record.key, b"user-42");
        assert_eq!(record.event_type, "USER_LOGOUT");
        assert_eq!(record.timestamp_ms, 1_700_000_000_123);
        let decoded = UserEvent::decode(record.value.as_slice()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(
            record.size(),
            24 + 7 + record.value.len() + "event-type".len() + "USER_LOGOUT".len()
        );
    }
}
