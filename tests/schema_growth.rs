//! The schema drives the code: a copy of this crate whose proto/user_event.proto gains an
//! optional field and an enum value builds with no Rust edit, and its binary produces and
//! consumes a JSON line using both, against the real broker.
//!
//! The copy lives at a fixed place under the target directory and builds into this
//! target directory, so after the first run only the crate itself is compiled again.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use kafka_producer::reader;

/// The compatible change a user would make: one new optional field, one new enum value.
const NEW_FIELD: &str = "  optional string session_id = 6;\n";
const NEW_ENUM_VALUE: &str = "  USER_PASSWORD_RESET = 4;\n";

/// What the copy needs to build: the manifest and lock file, the build script, the
/// schema, the sources, the vendored rskafka, and the declared bench.
const COPIED: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "proto",
    "src",
    "vendor",
    "benches/hot_path.rs",
];

/// Writes `contents` unless the file already holds them: unchanged files keep their
/// modification time, so cargo does not rebuild what they feed.
fn write_if_changed(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if std::fs::read(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).unwrap();
    }
}

/// Makes `to` a copy of `from`: changed files rewritten, files `from` no longer has
/// removed (a module moved to another file would otherwise be found twice).
fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        if let Ok(entries) = std::fs::read_dir(to) {
            for entry in entries {
                let entry = entry.unwrap();
                if !from.join(entry.file_name()).exists() {
                    let path = entry.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path).unwrap();
                    } else {
                        std::fs::remove_file(&path).unwrap();
                    }
                }
            }
        }
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        write_if_changed(to, &std::fs::read(from).unwrap());
    }
}

/// The target directory this test binary was built in (…/target/debug/deps/this).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The schema with the new field added to `UserEvent` and the new value to `EventType`.
fn grown_schema(schema: &str) -> String {
    let message = schema
        .find("message UserEvent {")
        .expect("UserEvent in the schema");
    let message_end = message + schema[message..].find("\n}").unwrap() + 1;
    let mut grown = format!(
        "{}{NEW_FIELD}{}",
        &schema[..message_end],
        &schema[message_end..]
    );
    let enumeration = grown
        .find("enum EventType {")
        .expect("EventType in the schema");
    let enum_end = enumeration + grown[enumeration..].find("\n}").unwrap() + 1;
    grown.insert_str(enum_end, NEW_ENUM_VALUE);
    grown
}

/// Runs cargo in the copy, building into `target`.
fn cargo(copy_dir: &Path, target: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args(args)
        .current_dir(copy_dir)
        .env("CARGO_TARGET_DIR", target);
    // Without the variables cargo set for this test (CARGO_MANIFEST_DIR, OUT_DIR, ...),
    // which some build scripts (ring's) watch: with them, the dependencies shared with
    // this crate's own build would be rebuilt on every run, by one build and then the other.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = name.starts_with("CARGO_") || name == "OUT_DIR";
        if set_by_cargo && name != "CARGO_HOME" && name != "CARGO_TARGET_DIR" {
            command.env_remove(&*name);
        }
    }
    command.output().unwrap()
}

fn run_with_stdin(binary: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(binary)
        .args(args)
        .env("KAFKA_BROKER", common::broker())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the grown binary runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_field_and_an_enum_value_added_to_the_schema_work_in_produce_and_consume_with_no_rust_edit()
 {
    let Some(client) = common::client_or_skip("schema-growth").await else {
        return;
    };
    let root = common::repo_root();
    let target = target_dir();
    let copy_dir = target.join("schema-growth-crate");
    for path in COPIED
        .iter()
        .filter(|p| !["Cargo.toml", "proto"].contains(p))
    {
        copy(&root.join(path), &copy_dir.join(path));
    }
    // Another package and binary name, so that its binary does not overwrite ours in the
    // shared target directory.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let renamed = manifest.replace("\"kafka-producer\"", "\"kafka-producer-grown\"");
    assert!(
        renamed.contains("[[bin]]\nname = \"kafka-producer-grown\""),
        "{renamed}"
    );
    write_if_changed(&copy_dir.join("Cargo.toml"), renamed.as_bytes());
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let lock = lock.replace(
        "name = \"kafka-producer\"\n",
        "name = \"kafka-producer-grown\"\n",
    );
    write_if_changed(&copy_dir.join("Cargo.lock"), lock.as_bytes());
    let schema = std::fs::read_to_string(root.join("proto/user_event.proto")).unwrap();
    let grown = grown_schema(&schema);
    assert!(
        grown.contains(NEW_FIELD) && grown.contains(NEW_ENUM_VALUE),
        "{grown}"
    );
    write_if_changed(&copy_dir.join("proto/user_event.proto"), grown.as_bytes());

    let started = Instant::now();
    let build = cargo(
        &copy_dir,
        &target,
        &["build", "--quiet", "--bin", "kafka-producer-grown"],
    );
    eprintln!(
        "schema-growth: building the grown copy took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        build.status.success(),
        "the crate does not build after a compatible schema change:\n{}",
        text(&build.stderr)
    );
    // Its unit tests and the bench build events too: they must compile as well.
    let started = Instant::now();
    let check = cargo(
        &copy_dir,
        &target,
        &["check", "--quiet", "--lib", "--tests", "--benches"],
    );
    eprintln!(
        "schema-growth: checking the grown copy's tests and bench took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        check.status.success(),
        "the unit tests or the bench do not compile after a compatible schema change:\n{}",
        text(&check.stderr)
    );
    let binary = target.join("debug/kafka-producer-grown");

    let topic = common::unique_topic("schema-growth");
    common::create_topic(&client, &topic, 1).await;
    let line = r#"{"eventId":"grown-1","timestamp":"5","userId":"u","eventType":"USER_PASSWORD_RESET","sessionId":"s-1"}"#;
    let out = run_with_stdin(
        &binary,
        &["--topic", &topic, "produce", "--input", "-"],
        line,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let stored = reader::read_all(&client, &topic).await.unwrap();
    assert_eq!(stored.len(), 1);
    let value = stored[0].value.as_deref().unwrap_or_default();
    // Field 4 (event_type, varint) = 4; field 6 (session_id, length-delimited) = tag 0x32.
    assert!(
        value.windows(2).any(|w| w == [0x20, 4]),
        "event type 4 not in {value:?}"
    );
    assert!(
        value.windows(5).any(|w| w == [0x32, 3, b's', b'-', b'1']),
        "session_id not in {value:?}"
    );
    assert_eq!(
        stored[0].headers.get("event-type").map(Vec::as_slice),
        Some(&b"USER_PASSWORD_RESET"[..])
    );

    let out = run_with_stdin(&binary, &["--topic", &topic, "consume", "--count", "1"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["event"],
        serde_json::json!({
            "eventId": "grown-1",
            "timestamp": "5",
            "userId": "u",
            "eventType": "USER_PASSWORD_RESET",
            "sessionId": "s-1",
        }),
        "{printed}"
    );
}
