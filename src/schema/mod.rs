//! Schema tools replacing the original `make validate`/`make sync`, with neither protoc nor
//! kubectl: [`check`] compares a proposed `.proto` with the compiled-in one on the wire, and
//! [`configmap`] writes the Kubernetes ConfigMap that carries it. Used by the `schema` command.

mod check;
mod configmap;

pub use check::{Incompatibility, Severity, check};
pub use configmap::{InvalidName, configmap};

/// The schema's file name: the key it has in the ConfigMap and the name errors point at.
pub const PROTO_FILE_NAME: &str = "user_event.proto";

/// The schema this binary was compiled with (build.rs compiles the same file).
pub const USER_EVENT_PROTO: &str = include_str!("../../proto/user_event.proto");

/// Name of the ConfigMap the original `make sync` wrote.
pub const CONFIGMAP_NAME: &str = "protobuf-schemas";
