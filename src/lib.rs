//! kafka-producer: a pure-Rust Kafka producer for `UserEvent` protobuf messages,
//! ZSTD-compressed, with no C client library.
//!
//! Data flows one way; each step is one module:
//!
//! - [`generator`] / [`json_lines`]: where events come from (synthetic, or JSON lines).
//! - [`record`]: one event → one Kafka record (protobuf value, `user_id` key, `event-type` header).
//! - [`producer`]: the handle: admit into the bounded buffer ([`buffer`]), pick the partition
//!   ([`partitioner`]), hand to the partition's worker.
//! - [`accumulator`]: per-partition batches (record cap, byte cap, linger, expiry), framed
//!   as Kafka record batches ([`record_batch`]) and compressed ([`compression`]) on close.
//! - [`partition_worker`]: stamps (idempotence), sends and retries its partition's batches
//!   in order through its leader's sender, reports each event.
//! - [`router`]: which broker leads each partition; [`broker_sender`]: one per broker,
//!   multi-partition produce requests, pipelined on one connection; [`idempotence`]: the
//!   producer id and epoch; [`cluster`]: the network edge (rskafka, or a test mock).
//! - [`delivery`]: the report every accepted event gets; [`metrics`]: the counters;
//!   [`prometheus`]: the same in the Prometheus text format.
//! - [`connect`]: brokers, TLS, SASL, topics. [`config`]: every setting and its default.
//! - [`reader`]: reads a topic back (`consume`, `verify`). [`schema`]: the schema tools (the
//!   wire-compatibility check and the ConfigMap writer).
//! - [`event`]: the `UserEvent` types generated from `proto/user_event.proto`.

pub(crate) mod accumulator;
pub(crate) mod background;
pub(crate) mod batch_report;
pub(crate) mod broker_sender;
pub(crate) mod buffer;
pub mod cluster;
pub mod compression;
pub mod config;
pub mod connect;
pub mod delivery;
pub mod event;
pub mod generator;
pub(crate) mod idempotence;
pub(crate) mod inbox;
pub mod json_lines;
pub mod memory;
pub mod metrics;
pub(crate) mod partition_worker;
pub mod partitioner;
pub mod producer;
pub mod prometheus;
pub mod reader;
pub mod record;
pub mod record_batch;
pub(crate) mod router;
pub mod schema;

pub use buffer::BufferUsage;
pub use config::ProducerConfig;
pub use delivery::{Delivered, DeliveryError, DeliveryFuture, DeliveryResult};
pub use producer::{Producer, Readiness, SendError, StartError};
