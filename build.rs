//! Compiles proto/user_event.proto into Rust with prost, using protox (a pure-Rust
//! protobuf parser) so that building needs no `protoc` binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/user_event.proto");
    let descriptors = protox::compile(["proto/user_event.proto"], ["proto"])?;
    prost_build::Config::new()
        // BTreeMap keeps metadata in a stable order, so encoding the same event
        // twice gives the same bytes (tests and duplicates detection rely on it).
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
