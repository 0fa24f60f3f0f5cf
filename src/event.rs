//! The `UserEvent` types compiled from proto/user_event.proto by build.rs: prost structs
//! with their protobuf encoding, and their protobuf JSON mapping (serde, from pbjson).
//! Used by every other module; build a value with `..Default::default()` at the end, so
//! that code keeps building when the schema gains a field.

include!(concat!(env!("OUT_DIR"), "/events.rs"));
include!(concat!(env!("OUT_DIR"), "/events.serde.rs"));

/// The compiled schema (a `FileDescriptorSet`), for code that reads events by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/user_event.descriptors.bin"));

#[cfg(test)]
#[allow(
    clippy::needless_update,
    reason = "event literals end with ..Default::default() so that a field added to the schema builds"
)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn fully_populated_event_round_trips_with_the_schema_field_numbers() {
        let event = UserEvent {
            event_id: "id".into(),
            timestamp: 1,
            user_id: "u7".into(),
            event_type: EventType::UserLogin as i32,
            data: Some(UserEventData {
                email: Some("a@b".into()),
                username: Some("al".into()),
                metadata: [("k".to_string(), "v".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = event.encode_to_vec();
        // Hand-computed: field 1 (event_id, length-delimited) = tag 0x0a, len 2, "id";
        // field 2 (timestamp, varint) = tag 0x10, 1; field 3 (user_id) = tag 0x1a, len 2, "u7";
        // field 4 (event_type, varint) = tag 0x20, USER_LOGIN = 2.
        assert_eq!(
            &bytes[..12],
            &[0x0a, 2, b'i', b'd', 0x10, 1, 0x1a, 2, b'u', b'7', 0x20, 2]
        );
        // Field 5 (data, length-delimited) = tag 0x2a.
        assert_eq!(bytes[12], 0x2a);
        assert_eq!(UserEvent::decode(bytes.as_slice()).unwrap(), event);
    }
}
