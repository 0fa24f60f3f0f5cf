//! The `UserEvent` schema compiled from proto/user_event.proto by build.rs.

include!(concat!(env!("OUT_DIR"), "/events.rs"));
