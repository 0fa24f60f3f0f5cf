//! kafka-producer: a pure-Rust Kafka producer for `UserEvent` protobuf messages.
pub mod event;
