//! kafka-producer: a pure-Rust Kafka producer for `UserEvent` protobuf messages.
pub mod event;
pub mod generator;
pub mod json_lines;
pub mod partitioner;
pub mod schema;
