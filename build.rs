//! Compiles proto/user_event.proto into Rust: prost for the types and the protobuf
//! encoding, pbjson for the protobuf JSON mapping, both from one set of descriptors made
//! by protox (a pure-Rust protobuf parser), so building needs no `protoc` binary.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/user_event.proto");
    let descriptors = protox::compile(["proto/user_event.proto"], ["proto"])?;
    let descriptor_bytes = descriptors.encode_to_vec();
    // The descriptors themselves, for reading events whose enum numbers the generated
    // code does not name (src/json_lines.rs).
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("user_event.descriptors.bin"),
        &descriptor_bytes,
    )?;
    prost_build::Config::new()
        // BTreeMap keeps metadata in a stable order, so encoding the same event
        // twice gives the same bytes (tests and duplicates detection rely on it).
        .btree_map(["."])
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .btree_map(["."])
        // Every field is written, defaults included (eventId "" and timestamp 0 too), so
        // a line `consume` prints is read back by `produce --input` as exactly the same
        // event: a field left out would get a fresh id or the current time instead.
        .emit_fields()
        // No `.ignore_unknown_fields()`: the generated code must refuse unknown fields,
        // since json_lines tries it alone first and leaves every line it refuses to its
        // adapter, which drops unknown fields only when asked at run time.
        .build(&[".events"])?;
    Ok(())
}
