//! The deployment files keep the promises the README and the binary make:
//! docker-compose.yml runs `kafka` and a `producer` built from the Dockerfile, the
//! producer waits for a healthy broker and reaches it on the broker's internal
//! listener, names its settings with the variables the binary reads, and the
//! Dockerfile ships the static binary on `scratch`, as a non-root user.
//!
//! The same for the service side: the image, compose file and Kubernetes manifests
//! (deploy/kubernetes/) serve metrics and probes on the port they publish and probe,
//! set only variables the binary reads, with values it accepts, run unprivileged, give
//! SIGTERM time to deliver, and the Prometheus config scrapes where the producer listens.
//!
//! No Docker engine or Kubernetes cluster is needed (none runs in CI): the compose file
//! and manifests are parsed as YAML (yaml-rust2), the Dockerfile and .dockerignore are
//! read as text, and the settings they give are tried on the binary itself. The image
//! itself is built and run with podman by `make test-image` (scripts/test-image.sh).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::prometheus;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    let path = repo().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// docker-compose.yml, parsed with yaml-rust2 (a dev-dependency), looked up by path.
// ---------------------------------------------------------------------------

struct Compose(Yaml);

impl Compose {
    fn load() -> Self {
        Compose(load_yaml("docker-compose.yml"))
    }

    fn node(&self, path: &[&str]) -> Option<&Yaml> {
        lookup(&self.0, path)
    }

    /// The keys of the mapping at `path` (empty if there is none).
    fn keys(&self, path: &[&str]) -> Vec<String> {
        self.node(path)
            .and_then(Yaml::as_hash)
            .map(|h| h.keys().filter_map(scalar_text).collect())
            .unwrap_or_default()
    }

    /// The scalar at `path`, as compose reads it (numbers and booleans as text).
    fn scalar(&self, path: &[&str]) -> Option<String> {
        self.node(path).and_then(scalar_text)
    }

    /// The list of scalars at `path`.
    fn list(&self, path: &[&str]) -> Option<Vec<String>> {
        let items = self.node(path)?.as_vec()?;
        Some(
            items
                .iter()
                .map(|i| {
                    scalar_text(i).unwrap_or_else(|| panic!("{path:?}: {i:?} is not a scalar"))
                })
                .collect(),
        )
    }
}

/// The node at `path`: mapping keys, or list indices for lists (`["ports", "0"]`).
fn lookup<'a>(yaml: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    let mut node = yaml;
    for key in path {
        node = match node {
            Yaml::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => node.as_hash()?.get(&Yaml::String(key.to_string()))?,
        };
    }
    Some(node)
}

/// A file of the repo holding exactly one YAML document.
fn load_yaml(name: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(name))
        .unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{name} should be one YAML document");
    docs.remove(0)
}

fn scalar_text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `${NAME:-default}` -> `default`, as compose interpolates with NAME unset.
fn with_defaults(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed ${") + start;
        let expr = &rest[start + 2..end];
        if let Some((_, default)) = expr.split_once(":-") {
            out.push_str(default);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// A reader for Dockerfiles: instructions, continuation lines joined, by stage.
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn dockerfile_instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if line.starts_with('#') {
            continue; // comment inside a continued instruction
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let (keyword, args) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        pending.clear();
    }
    assert!(
        pending.is_empty(),
        "Dockerfile ends inside a continued line"
    );
    out
}

/// The stages of a multi-stage Dockerfile, each starting with its FROM.
fn dockerfile_stages() -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for instruction in dockerfile_instructions(&read("Dockerfile")) {
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("Dockerfile has an instruction before its first FROM")
            .push(instruction);
    }
    stages
}

fn args_of<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// Parses an exec-form (JSON array) ENTRYPOINT/CMD.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("not an exec-form JSON array ({e}): {args}"))
}

/// `kafka-producer [args] --help`, as text.
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "--help failed: {output:?}");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

// ---------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------

#[test]
fn compose_defines_the_kafka_and_producer_services() {
    let compose = Compose::load();
    let keys = compose.keys(&["services"]);
    assert!(
        keys.contains(&"kafka".to_string()),
        "no kafka service: {keys:?}"
    );
    assert!(
        keys.contains(&"producer".to_string()),
        "no producer service: {keys:?}"
    );
}

#[test]
fn compose_runs_the_kafka_version_the_scripts_run() {
    let pom = read("scripts/kafka/pom.xml");
    let version = pom
        .split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(version, _)| version.trim().to_string())
        .expect("scripts/kafka/pom.xml names <kafka.version>");
    let image = Compose::load()
        .scalar(&["services", "kafka", "image"])
        .expect("the kafka service names its image");
    assert_eq!(
        image,
        format!("apache/kafka:{version}"),
        "docker compose and scripts/kafka.sh must run the same Kafka"
    );
}

#[test]
fn producer_starts_only_once_kafka_is_healthy() {
    let compose = Compose::load();
    assert_eq!(
        compose
            .scalar(&["services", "producer", "depends_on", "kafka", "condition"])
            .as_deref(),
        Some("service_healthy"),
        "producer must depend on kafka with condition: service_healthy"
    );
    // ... which means nothing unless kafka has a health check.
    let test = compose
        .list(&["services", "kafka", "healthcheck", "test"])
        .expect("kafka has a healthcheck test");
    assert!(
        test.iter().any(|t| t.contains("kafka-broker-api-versions")),
        "kafka's health check should ask the broker itself: {test:?}"
    );
}

#[test]
fn producer_is_built_from_this_repositorys_dockerfile() {
    let compose = Compose::load();
    let context = compose
        .scalar(&["services", "producer", "build", "context"])
        .expect("producer has build.context");
    let dockerfile = compose
        .scalar(&["services", "producer", "build", "dockerfile"])
        .unwrap_or_else(|| "Dockerfile".to_string());
    let path = repo().join(&context).join(&dockerfile);
    assert!(
        path.is_file(),
        "producer builds from {}, which does not exist",
        path.display()
    );
    assert_eq!(
        path.canonicalize().unwrap(),
        repo().join("Dockerfile").canonicalize().unwrap()
    );
}

#[test]
fn producer_is_configured_with_the_variables_the_readme_and_binary_use() {
    let compose = Compose::load();
    let env = ["services", "producer", "environment"];
    let names = compose.keys(&env);
    let readme = read("README.md");
    // The container runs `produce`: its help lists the shared and its own variables.
    let cli_help = help(&["produce"]);
    for name in ["KAFKA_BROKER", "KAFKA_TOPIC"] {
        assert!(
            names.contains(&name.to_string()),
            "producer env lacks {name}: {names:?}"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "README does not document `{name}`"
        );
        assert!(
            cli_help.contains(&format!("[env: {name}=")),
            "the binary does not read {name} (per --help)"
        );
    }
    // Every variable given to the producer is one the binary reads (or RUST_LOG).
    for name in &names {
        assert!(
            name == "RUST_LOG" || cli_help.contains(&format!("[env: {name}")),
            "producer env sets {name}, which the binary does not read"
        );
    }
    assert_eq!(
        compose
            .scalar(&[&env[..], &["KAFKA_TOPIC"]].concat())
            .as_deref(),
        Some("user.events"),
        "the producer's topic must be the README's user.events"
    );
    assert!(
        readme.contains("user.events"),
        "README no longer names user.events"
    );
}

#[test]
fn producer_reaches_kafka_on_its_internal_listener() {
    let compose = Compose::load();
    let broker = compose
        .scalar(&["services", "producer", "environment", "KAFKA_BROKER"])
        .expect("producer sets KAFKA_BROKER");
    let (host, port) = broker.rsplit_once(':').expect("KAFKA_BROKER is host:port");
    assert_eq!(
        host, "kafka",
        "the producer must use the kafka service's name, not {host}"
    );

    let kafka_env = |key: &str| {
        compose
            .scalar(&["services", "kafka", "environment", key])
            .unwrap_or_else(|| panic!("kafka service lacks {key}"))
    };
    let advertised = kafka_env("KAFKA_ADVERTISED_LISTENERS");
    let listeners = kafka_env("KAFKA_LISTENERS");
    let protocols = kafka_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP");

    // The listener advertised as kafka:<port> ...
    let internal = advertised
        .split(',')
        .find_map(|l| l.strip_suffix(&format!("://kafka:{port}")))
        .unwrap_or_else(|| panic!("kafka does not advertise kafka:{port}: {advertised}"));
    // ... is bound on that port, and is plaintext (the producer sets no TLS/SASL).
    assert!(
        listeners
            .split(',')
            .any(|l| l.starts_with(&format!("{internal}://")) && l.ends_with(&format!(":{port}"))),
        "listener {internal} is not bound on {port}: {listeners}"
    );
    assert!(
        protocols
            .split(',')
            .any(|p| p == format!("{internal}:PLAINTEXT")),
        "listener {internal} is not PLAINTEXT: {protocols}"
    );
}

#[test]
fn kafka_still_serves_the_host_on_localhost_9092() {
    let compose = Compose::load();
    let ports = compose
        .list(&["services", "kafka", "ports"])
        .expect("kafka publishes ports");
    assert!(
        ports.iter().any(|p| p == "9092:9092"),
        "kafka does not publish 9092: {ports:?}"
    );
    let advertised = compose
        .scalar(&[
            "services",
            "kafka",
            "environment",
            "KAFKA_ADVERTISED_LISTENERS",
        ])
        .unwrap();
    assert!(
        advertised
            .split(',')
            .any(|l| l.ends_with("://localhost:9092")),
        "host clients (README default localhost:9092) need an advertised localhost:9092: {advertised}"
    );
    assert!(
        read("README.md").contains("localhost:9092"),
        "README no longer names localhost:9092"
    );
}

#[test]
fn producer_produces_continuously_with_flags_the_binary_accepts() {
    let compose = Compose::load();
    let command: Vec<String> = compose
        .list(&["services", "producer", "command"])
        .expect("producer has a command")
        .iter()
        .map(|a| with_defaults(a))
        .collect();
    assert_eq!(
        command.first().map(String::as_str),
        Some("produce"),
        "{command:?}"
    );
    let duration = command.iter().position(|a| a == "--duration");
    assert_eq!(
        duration
            .and_then(|i| command.get(i + 1))
            .map(String::as_str),
        Some("0"),
        "the producer must run until stopped (--duration 0): {command:?}"
    );
    let rate = command.iter().position(|a| a == "--rate");
    let rate = rate
        .and_then(|i| command.get(i + 1))
        .expect("--rate VALUE in the command");
    assert!(
        rate.parse::<u64>().is_ok_and(|r| r > 0),
        "default rate is not a number: {rate}"
    );
    let produce_help = help(&["produce"]);
    for flag in command.iter().filter(|a| a.starts_with("--")) {
        assert!(
            produce_help.contains(&format!("{flag} "))
                || produce_help.contains(&format!("{flag}\n")),
            "`produce` has no flag {flag}"
        );
    }
}

#[test]
fn compose_file_validates_when_a_compose_client_is_installed() {
    // Optional: CI has no compose client; where one is, it must accept the file.
    let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for cmd in candidates {
        let Ok(out) = Command::new(cmd[0])
            .args(&cmd[1..])
            .args(["-f", "docker-compose.yml", "config", "-q"])
            .current_dir(repo())
            .output()
        else {
            continue;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("unknown command") || stderr.contains("unknown shorthand flag") {
            continue; // docker without the compose plugin
        }
        assert!(
            out.status.success(),
            "{cmd:?} config rejects docker-compose.yml: {stderr}"
        );
        return;
    }
    eprintln!("no compose client here: only the text checks ran");
}

// ---------------------------------------------------------------------------
// Dockerfile and .dockerignore
// ---------------------------------------------------------------------------

#[test]
fn dockerfile_final_stage_is_scratch() {
    let stages = dockerfile_stages();
    assert!(
        stages.len() >= 2,
        "expected a multi-stage build (builder + runtime)"
    );
    let from = &stages.last().unwrap()[0].args;
    assert_eq!(
        from.split_whitespace().next(),
        Some("scratch"),
        "final stage is FROM {from}"
    );
}

#[test]
fn dockerfile_runs_as_a_non_root_user() {
    let stages = dockerfile_stages();
    let users = args_of(stages.last().unwrap(), "USER");
    let user = users.last().expect("final stage sets USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    for id in [uid, gid] {
        // scratch has no /etc/passwd: names cannot resolve, so ids must be numeric.
        let n: u32 = id
            .parse()
            .unwrap_or_else(|_| panic!("USER {user}: use numeric ids on scratch"));
        assert_ne!(n, 0, "USER {user} is root");
    }
}

#[test]
fn dockerfile_entrypoint_is_the_static_binary() {
    let stages = dockerfile_stages();
    let last = stages.last().unwrap();
    let entrypoint = exec_form(
        args_of(last, "ENTRYPOINT")
            .last()
            .expect("final stage has ENTRYPOINT"),
    );
    assert_eq!(entrypoint, ["/kafka-producer"]);
    // The final stage gets /kafka-producer from the builder ...
    let copies = args_of(last, "COPY");
    let (builder_name, copy) = copies
        .iter()
        .find_map(|c| {
            let rest = c.strip_prefix("--from=")?;
            let (stage, paths) = rest.split_once(' ')?;
            paths
                .trim()
                .ends_with(" /kafka-producer")
                .then_some((stage, *c))
        })
        .expect("final stage copies /kafka-producer from a builder stage");
    // ... where it is built for the musl target (static, so it runs on scratch),
    // from this crate's binary.
    let builder = stages
        .iter()
        .find(|s| {
            s[0].args
                .to_ascii_lowercase()
                .ends_with(&format!(" as {}", builder_name.to_ascii_lowercase()))
        })
        .unwrap_or_else(|| panic!("no stage named {builder_name} for `COPY {copy}`"));
    let runs = args_of(builder, "RUN").join("\n");
    assert!(
        runs.contains("--target x86_64-unknown-linux-musl")
            && runs.contains("--bin kafka-producer"),
        "builder must build --bin kafka-producer for x86_64-unknown-linux-musl"
    );
    assert!(
        runs.contains("target/x86_64-unknown-linux-musl/release/kafka-producer /kafka-producer"),
        "builder must put the musl binary at /kafka-producer"
    );
    // CA certificates for TLS brokers, as scratch has none.
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=") && c.ends_with("/etc/ssl/certs/ca-certificates.crt")),
        "final stage must copy the CA bundle to /etc/ssl/certs/ca-certificates.crt"
    );
    // Default command: produce until stopped.
    let cmd = exec_form(args_of(last, "CMD").last().expect("final stage has CMD"));
    assert_eq!(cmd.first().map(String::as_str), Some("produce"), "{cmd:?}");
    assert!(
        cmd.windows(2).any(|w| w == ["--duration", "0"]),
        "CMD must run until stopped: {cmd:?}"
    );
}

/// `make test-image` builds the runtime-prebuilt target (no Rust image to pull), so what
/// it checks holds for the default image only if the two stages differ in where the
/// files come from and nothing else.
#[test]
fn dockerfile_prebuilt_target_is_the_runtime_stage_with_a_prebuilt_binary() {
    let stages = dockerfile_stages();
    let last = stages.last().unwrap();
    let prebuilt = stages
        .iter()
        .find(|s| {
            s[0].args
                .to_ascii_lowercase()
                .ends_with(" as runtime-prebuilt")
        })
        .expect("a stage named runtime-prebuilt");
    assert_eq!(
        prebuilt[0].args.split_whitespace().next(),
        Some("scratch"),
        "runtime-prebuilt is FROM {}",
        prebuilt[0].args
    );
    let settings = |stage: &[Instruction]| -> Vec<(String, String)> {
        stage[1..]
            .iter()
            .filter(|i| i.keyword != "COPY")
            .map(|i| (i.keyword.clone(), i.args.clone()))
            .collect()
    };
    assert_eq!(
        settings(prebuilt),
        settings(last),
        "runtime-prebuilt and the final stage should set the same ENV, USER, CMD, ..."
    );
    // The same files at the same places, from the build context instead of the builder.
    let destinations = |stage: &[Instruction]| -> Vec<String> {
        let mut d: Vec<String> = args_of(stage, "COPY")
            .iter()
            .map(|c| c.split_whitespace().last().unwrap().to_string())
            .collect();
        d.sort();
        d
    };
    assert_eq!(destinations(prebuilt), destinations(last));
    for copy in args_of(prebuilt, "COPY") {
        assert!(
            !copy.starts_with("--from="),
            "runtime-prebuilt copies from its context, not another stage: COPY {copy}"
        );
    }
    let script = read("scripts/test-image.sh");
    assert!(
        script.contains("--target runtime-prebuilt"),
        "scripts/test-image.sh should build the runtime-prebuilt target"
    );
}

/// The .dockerignore patterns, normalised (no leading/trailing slash).
fn dockerignore_patterns() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').trim_start_matches('/').to_string())
        .collect()
}

/// Whether a pattern (plain path, or `**/name`) excludes `path` or a parent of it.
fn ignored(patterns: &[String], path: &str) -> bool {
    let components: Vec<&str> = path.split('/').collect();
    patterns.iter().any(|p| {
        if p.starts_with('!') {
            return false;
        }
        match p.strip_prefix("**/") {
            Some(name) => components.contains(&name),
            None => (1..=components.len()).any(|n| components[..n].join("/") == *p),
        }
    })
}

/// Files and folders that cargo needs to build the crate: the manifest and lock,
/// build.rs and the proto it compiles, every `path = "..."` (lib, bins, benches,
/// path dependencies, [patch] entries) and every [[bench]]/[[test]]/[[example]]
/// declared by name only (cargo refuses a manifest whose declared targets are missing).
fn paths_cargo_needs() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let mut needed: Vec<String> = ["Cargo.toml", "Cargo.lock", "src", "proto"]
        .map(String::from)
        .to_vec();
    if repo().join("build.rs").exists() {
        needed.push("build.rs".into());
    }
    let quoted_after = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)?;
        let rest = line[at + key.len()..].trim_start().strip_prefix('=')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    let mut table = String::new();
    let mut table_has_path = false;
    let mut table_name: Option<String> = None;
    let flush = |table: &str, has_path: bool, name: &Option<String>, needed: &mut Vec<String>| {
        let dir = match table {
            "[[bench]]" => "benches",
            "[[test]]" => "tests",
            "[[example]]" => "examples",
            _ => return,
        };
        if let (false, Some(name)) = (has_path, name) {
            let file = format!("{dir}/{name}.rs");
            let folder = format!("{dir}/{name}/main.rs");
            needed.push(if repo().join(&folder).exists() {
                folder
            } else {
                file
            });
        }
    };
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            flush(&table, table_has_path, &table_name, &mut needed);
            table = line.to_string();
            table_has_path = false;
            table_name = None;
            continue;
        }
        if let Some(path) = quoted_after(line, "path") {
            // `path = "..."` as a key or inside an inline table; not `xpath`.
            if line.starts_with("path") || line.contains("{") {
                needed.push(path);
                table_has_path |= line.starts_with("path");
            }
        }
        if line.starts_with("name") {
            table_name = quoted_after(line, "name");
        }
    }
    flush(&table, table_has_path, &table_name, &mut needed);
    needed
}

#[test]
fn docker_build_context_has_what_cargo_needs_and_not_the_build_output() {
    let patterns = dockerignore_patterns();
    for excluded in ["target", ".kafka", "dist"] {
        assert!(
            ignored(&patterns, excluded),
            ".dockerignore does not exclude {excluded}/: {patterns:?}"
        );
    }
    // What the builder stage copies from the context (not --from another stage).
    let stages = dockerfile_stages();
    let mut copied: Vec<String> = Vec::new();
    for copy in stages.iter().flat_map(|s| args_of(s, "COPY")) {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        if parts.iter().any(|p| p.starts_with("--from=")) {
            continue;
        }
        let sources: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.starts_with("--"))
            .collect();
        for source in &sources[..sources.len() - 1] {
            copied.push(
                source
                    .trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string(),
            );
        }
    }
    for path in paths_cargo_needs() {
        assert!(
            repo().join(&path).exists(),
            "Cargo.toml needs {path}, which is not in the repo"
        );
        assert!(
            !ignored(&patterns, &path),
            "cargo needs {path}, but .dockerignore excludes it"
        );
        assert!(
            copied
                .iter()
                .any(|c| c == "." || c == &path || path.starts_with(&format!("{c}/"))),
            "cargo needs {path}, but the Dockerfile does not COPY it (copies: {copied:?})"
        );
    }
}

// ---------------------------------------------------------------------------
// The binary's own view: the variables it reads, its defaults, and whether it accepts
// a set of settings.
// ---------------------------------------------------------------------------

/// Every variable `kafka-producer --help` and `kafka-producer produce --help` name
/// (`[env: NAME=...]`, or `[env: NAME]` for one whose value is hidden).
fn variables_the_binary_reads() -> Vec<String> {
    let text = help(&[]) + &help(&["produce"]);
    let mut names: Vec<String> = text
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.split(['=', ']'])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// RUST_LOG is read by the log filter, not by an option; the image's SSL_CERT_FILE
/// names its CA bundle for anything that looks there.
const READ_OUTSIDE_OPTIONS: [&str; 2] = ["RUST_LOG", "SSL_CERT_FILE"];

fn assert_binary_reads(context: &str, names: &[String]) {
    let read = variables_the_binary_reads();
    for name in names {
        assert!(
            READ_OUTSIDE_OPTIONS.contains(&name.as_str()) || read.contains(name),
            "{context} sets {name}, which the binary does not read (its variables: {read:?})"
        );
    }
}

/// The `[default: ...]` that `produce --help` gives `flag`.
fn produce_default(flag: &str) -> String {
    let text = help(&["produce"]);
    let at = text
        .find(&format!("{flag} <"))
        .unwrap_or_else(|| panic!("`produce --help` has no {flag}"));
    // From the flag to the next line that starts another option.
    let entry: String = text[at..]
        .lines()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with('-'))
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n");
    entry
        .split_once("[default: ")
        .and_then(|(_, d)| d.split_once(']'))
        .map(|(d, _)| d.to_string())
        .unwrap_or_else(|| panic!("{flag} shows no default: {entry}"))
}

/// A duration as the binary reads it: with a unit, or a bare number in the unit the
/// variable's name ends with.
fn duration_value(variable: &str, value: &str) -> Duration {
    if let Ok(n) = value.parse::<u64>() {
        return if variable.ends_with("_MS") {
            Duration::from_millis(n)
        } else {
            Duration::from_secs(n)
        };
    }
    humantime::parse_duration(value).unwrap_or_else(|e| panic!("{variable}={value}: {e}"))
}

/// The setting `variable` has in `env`, or the binary's default for `flag`.
fn setting(env: &[(String, String)], variable: &str, flag: &str) -> String {
    env.iter()
        .find(|(k, _)| k == variable)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| produce_default(flag))
}

/// Runs the binary with a deployment's arguments and variables, except that the broker
/// and the metrics address become loopback ones nothing listens on and the connect
/// timeout 1 s: it must get past checking its options (exit 2 means one was refused)
/// and fail only at reaching the broker (exit 3).
fn assert_settings_accepted(context: &str, args: &[String], env: &[(String, String)]) {
    let broker = format!("127.0.0.1:{}", prometheus::free_port());
    let metrics = format!("127.0.0.1:{}", prometheus::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("KAFKA_BROKER", &broker)
        .env("KAFKA_CONNECT_TIMEOUT_S", "1")
        .env("KAFKA_PRODUCER_METRICS_ADDR", &metrics)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll the binary").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("the binary's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{context}: `kafka-producer {}` with its variables should stop only because no \
         broker answers at {broker} (exit 3); it ended with {} and said: {stderr}",
        args.join(" "),
        out.status
    );
}

/// The address in KAFKA_PRODUCER_METRICS_ADDR, which must be reachable from outside the
/// container (probes and Prometheus come from elsewhere): an unspecified IP.
fn metrics_addr(context: &str, value: Option<&str>) -> SocketAddr {
    let value =
        value.unwrap_or_else(|| panic!("{context} does not set KAFKA_PRODUCER_METRICS_ADDR"));
    let addr: SocketAddr = value.parse().unwrap_or_else(|e| {
        panic!("{context}: KAFKA_PRODUCER_METRICS_ADDR={value} is not HOST:PORT ({e})")
    });
    assert!(
        addr.ip().is_unspecified(),
        "{context}: KAFKA_PRODUCER_METRICS_ADDR={value} is not reachable from outside the \
         container; use 0.0.0.0:{}",
        addr.port()
    );
    addr
}

// ---------------------------------------------------------------------------
// The image and compose file serve metrics
// ---------------------------------------------------------------------------

/// The final stage's ENV, as (name, value).
fn dockerfile_env() -> Vec<(String, String)> {
    let stages = dockerfile_stages();
    args_of(stages.last().unwrap(), "ENV")
        .iter()
        .flat_map(|args| args.split_whitespace())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair}: use NAME=VALUE"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn image_serves_metrics_on_the_port_it_exposes_and_logs_json() {
    let env = dockerfile_env();
    let names: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
    assert_binary_reads("the Dockerfile", &names);
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let addr = metrics_addr("the Dockerfile", get("KAFKA_PRODUCER_METRICS_ADDR"));
    let stages = dockerfile_stages();
    let exposed: Vec<&str> = args_of(stages.last().unwrap(), "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .collect();
    assert!(
        exposed
            .iter()
            .any(|p| p.trim_end_matches("/tcp") == addr.port().to_string()),
        "the image serves metrics on {} but EXPOSEs {exposed:?}",
        addr.port()
    );
    assert_eq!(
        get("KAFKA_PRODUCER_LOG_FORMAT"),
        Some("json"),
        "the image should log JSON lines"
    );
    let cmd = exec_form(args_of(stages.last().unwrap(), "CMD").last().unwrap());
    assert_settings_accepted("the image's CMD and ENV", &cmd, &env);
}

#[test]
fn compose_publishes_the_metrics_port_the_producer_listens_on() {
    let compose = Compose::load();
    let env_path = ["services", "producer", "environment"];
    let value = compose
        .scalar(&[&env_path[..], &["KAFKA_PRODUCER_METRICS_ADDR"]].concat())
        .map(|v| with_defaults(&v));
    let addr = metrics_addr("compose's producer", value.as_deref());
    let ports = compose
        .list(&["services", "producer", "ports"])
        .expect("the producer publishes its metrics port");
    assert!(
        ports
            .iter()
            .any(|p| p.rsplit(':').next() == Some(&addr.port().to_string())),
        "the producer listens on {} but publishes {ports:?}",
        addr.port()
    );
    // The settings compose gives, tried on the binary.
    let env: Vec<(String, String)> = compose
        .keys(&env_path)
        .into_iter()
        .map(|k| {
            let v = compose
                .scalar(&[&env_path[..], &[k.as_str()]].concat())
                .unwrap_or_default();
            (k, with_defaults(&v))
        })
        .collect();
    let command: Vec<String> = compose
        .list(&["services", "producer", "command"])
        .expect("producer has a command")
        .iter()
        .map(|a| with_defaults(a))
        .collect();
    assert_settings_accepted("compose's producer", &command, &env);
}

#[test]
fn compose_stop_grace_period_covers_the_message_and_request_timeouts() {
    let compose = Compose::load();
    let grace = compose
        .scalar(&["services", "producer", "stop_grace_period"])
        .expect("the producer sets stop_grace_period (compose's default is 10 s)");
    let grace = humantime::parse_duration(&grace).expect("stop_grace_period is a duration");
    let needed = duration_value(
        "KAFKA_MESSAGE_TIMEOUT_MS",
        &produce_default("--message-timeout"),
    ) + duration_value(
        "KAFKA_REQUEST_TIMEOUT_MS",
        &produce_default("--request-timeout"),
    );
    assert!(
        grace > needed,
        "SIGTERM must leave the message timeout plus the request timeout ({needed:?}) to \
         deliver what was accepted; stop_grace_period is {grace:?}"
    );
}

#[test]
fn compose_prometheus_scrapes_the_port_the_producer_serves_metrics_on() {
    let compose = Compose::load();
    let image = compose
        .scalar(&["services", "prometheus", "image"])
        .expect("compose has a prometheus service with an image");
    assert!(
        image.starts_with("prom/prometheus:"),
        "prometheus image is {image}"
    );
    // The config file it loads is the repo's, mounted where --config.file points.
    let command = compose
        .list(&["services", "prometheus", "command"])
        .unwrap_or_default();
    let config_in_container = command
        .iter()
        .find_map(|a| a.strip_prefix("--config.file="))
        .unwrap_or("/etc/prometheus/prometheus.yml")
        .to_string();
    let volumes = compose
        .list(&["services", "prometheus", "volumes"])
        .expect("prometheus mounts its config");
    let source = volumes
        .iter()
        .find_map(|v| {
            let mut parts = v.split(':');
            let (source, target) = (parts.next()?, parts.next()?);
            (target == config_in_container).then(|| source.to_string())
        })
        .unwrap_or_else(|| panic!("nothing is mounted at {config_in_container}: {volumes:?}"));
    let source = source.trim_start_matches("./");
    assert_eq!(source, "deploy/prometheus/prometheus.yml");

    let config = load_yaml(source);
    let addr = metrics_addr(
        "compose's producer",
        compose
            .scalar(&[
                "services",
                "producer",
                "environment",
                "KAFKA_PRODUCER_METRICS_ADDR",
            ])
            .as_deref(),
    );
    let wanted = format!("producer:{}", addr.port());
    let jobs = lookup(&config, &["scrape_configs"])
        .and_then(Yaml::as_vec)
        .expect("prometheus.yml has scrape_configs");
    let job = jobs
        .iter()
        .find(|job| {
            lookup(job, &["static_configs"])
                .and_then(Yaml::as_vec)
                .into_iter()
                .flatten()
                .filter_map(|sc| lookup(sc, &["targets"]).and_then(Yaml::as_vec))
                .flatten()
                .any(|t| t.as_str() == Some(wanted.as_str()))
        })
        .unwrap_or_else(|| panic!("no scrape job in {source} has the target {wanted}"));
    let path = lookup(job, &["metrics_path"]).and_then(scalar_text);
    assert_eq!(
        path.as_deref().unwrap_or("/metrics"),
        "/metrics",
        "the producer serves /metrics"
    );
}

#[test]
fn prometheus_config_is_one_prometheus_loads() {
    if !prometheus::installed_or_skip("prometheus_config_is_one_prometheus_loads") {
        return;
    }
    prometheus::promtool_check_config(&repo().join("deploy/prometheus/prometheus.yml"))
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// deploy/kubernetes
// ---------------------------------------------------------------------------

const DEPLOYMENT: &str = "deploy/kubernetes/deployment.yaml";
const SERVICE: &str = "deploy/kubernetes/service.yaml";
const CONFIGMAP: &str = "deploy/kubernetes/configmap.yaml";

struct Deployment {
    doc: Yaml,
}

impl Deployment {
    fn load() -> Self {
        let doc = load_yaml(DEPLOYMENT);
        assert_eq!(
            lookup(&doc, &["kind"]).and_then(Yaml::as_str),
            Some("Deployment")
        );
        Deployment { doc }
    }

    fn pod(&self) -> &Yaml {
        lookup(&self.doc, &["spec", "template", "spec"]).expect("spec.template.spec")
    }

    /// The container that runs the producer.
    fn container(&self) -> &Yaml {
        let containers = lookup(self.pod(), &["containers"])
            .and_then(Yaml::as_vec)
            .expect("the pod has containers");
        containers
            .iter()
            .find(|c| lookup(c, &["name"]).and_then(Yaml::as_str) == Some("kafka-producer"))
            .expect("a container named kafka-producer")
    }

    fn env_entries(&self) -> &[Yaml] {
        lookup(self.container(), &["env"])
            .and_then(Yaml::as_vec)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn env_names(&self) -> Vec<String> {
        self.env_entries()
            .iter()
            .map(|e| {
                lookup(e, &["name"])
                    .and_then(scalar_text)
                    .expect("an env entry without a name")
            })
            .collect()
    }

    /// The variables given as plain values (not from a Secret).
    fn env_values(&self) -> Vec<(String, String)> {
        self.env_entries()
            .iter()
            .filter_map(|e| {
                let name = lookup(e, &["name"]).and_then(scalar_text)?;
                Some((name, lookup(e, &["value"]).and_then(scalar_text)?))
            })
            .collect()
    }

    fn env_entry(&self, name: &str) -> Option<&Yaml> {
        self.env_entries()
            .iter()
            .find(|e| lookup(e, &["name"]).and_then(Yaml::as_str) == Some(name))
    }

    fn args(&self) -> Vec<String> {
        lookup(self.container(), &["args"])
            .and_then(Yaml::as_vec)
            .expect("the container gives its args")
            .iter()
            .map(|a| scalar_text(a).expect("args are scalars"))
            .collect()
    }

    /// The container port a probe or Service names, by name or number.
    fn container_port(&self, port: &Yaml) -> Option<i64> {
        let ports = lookup(self.container(), &["ports"]).and_then(Yaml::as_vec)?;
        match port {
            Yaml::Integer(n) => ports
                .iter()
                .filter_map(|p| lookup(p, &["containerPort"]).and_then(Yaml::as_i64))
                .find(|p| p == n),
            Yaml::String(name) => ports
                .iter()
                .find(|p| lookup(p, &["name"]).and_then(Yaml::as_str) == Some(name))
                .and_then(|p| lookup(p, &["containerPort"]).and_then(Yaml::as_i64)),
            _ => None,
        }
    }

    /// A security setting of the container, or of the pod when the container leaves it.
    fn security(&self, key: &str) -> Option<&Yaml> {
        lookup(self.container(), &["securityContext", key])
            .or_else(|| lookup(self.pod(), &["securityContext", key]))
    }
}

/// Whether every label of `selector` is one of `labels`, with the same value.
fn selects(selector: Option<&Yaml>, labels: Option<&Yaml>) -> bool {
    let (Some(selector), Some(labels)) = (
        selector.and_then(Yaml::as_hash),
        labels.and_then(Yaml::as_hash),
    ) else {
        return false;
    };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes memory quantity in bytes (`64Mi`, `1Gi`, `100M`, `1000`).
fn memory_bytes(quantity: &str) -> f64 {
    let units = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    for (suffix, factor) in units {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<f64>().expect("a number before the unit") * factor;
        }
    }
    quantity
        .parse()
        .unwrap_or_else(|_| panic!("memory quantity {quantity}"))
}

/// A Kubernetes CPU quantity in CPUs (`100m`, `1`, `0.5`).
fn cpus(quantity: &str) -> f64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().expect("millicpu") / 1000.0,
        None => quantity
            .parse()
            .unwrap_or_else(|_| panic!("cpu quantity {quantity}")),
    }
}

#[test]
fn kubernetes_deployment_sets_only_variables_the_binary_reads() {
    let deployment = Deployment::load();
    let names = deployment.env_names();
    assert_binary_reads(DEPLOYMENT, &names);
    for name in [
        "KAFKA_BROKER",
        "KAFKA_TOPIC",
        "KAFKA_PRODUCER_METRICS_ADDR",
        "KAFKA_PRODUCER_LOG_FORMAT",
        "KAFKA_USERNAME",
        "KAFKA_PASSWORD",
    ] {
        assert!(
            names.contains(&name.to_string()),
            "{DEPLOYMENT} does not set {name}"
        );
    }
    let values = deployment.env_values();
    assert!(
        values.contains(&("KAFKA_PRODUCER_LOG_FORMAT".into(), "json".into())),
        "the deployment should log JSON lines: {values:?}"
    );
}

#[test]
fn kubernetes_deployment_settings_are_accepted_by_the_binary() {
    let deployment = Deployment::load();
    let args = deployment.args();
    assert_eq!(
        args.first().map(String::as_str),
        Some("produce"),
        "{args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--duration", "0"]),
        "the deployment must run until stopped: {args:?}"
    );
    assert_settings_accepted(DEPLOYMENT, &args, &deployment.env_values());
}

#[test]
fn kubernetes_credentials_come_from_a_secret_and_none_is_committed() {
    let deployment = Deployment::load();
    let text = read(DEPLOYMENT);
    for name in ["KAFKA_USERNAME", "KAFKA_PASSWORD"] {
        let entry = deployment
            .env_entry(name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert!(
            lookup(entry, &["value"]).is_none(),
            "{name} has a literal value"
        );
        let secret = lookup(entry, &["valueFrom", "secretKeyRef", "name"])
            .and_then(Yaml::as_str)
            .unwrap_or_else(|| panic!("{name} is not from a Secret (valueFrom.secretKeyRef)"));
        assert!(
            lookup(entry, &["valueFrom", "secretKeyRef", "key"]).is_some(),
            "{name}: secretKeyRef without a key"
        );
        assert!(
            text.contains(&format!("kubectl create secret generic {secret}")),
            "{DEPLOYMENT} should say how to create the Secret {secret}"
        );
    }
    for entry in std::fs::read_dir(repo().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.lines().any(|l| l.trim() == "kind: Secret"),
            "{} holds a Secret: credentials do not belong in the repo",
            path.display()
        );
    }
}

#[test]
fn kubernetes_probes_and_ports_agree_with_the_metrics_address() {
    let deployment = Deployment::load();
    let env = deployment.env_values();
    let addr = metrics_addr(
        DEPLOYMENT,
        env.iter()
            .find(|(k, _)| k == "KAFKA_PRODUCER_METRICS_ADDR")
            .map(|(_, v)| v.as_str()),
    );
    let port = i64::from(addr.port());
    assert_eq!(
        deployment.container_port(&Yaml::String("metrics".into())),
        Some(port),
        "the container port named metrics should be {port}, where the producer listens"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = lookup(deployment.container(), &[probe, "httpGet"])
            .unwrap_or_else(|| panic!("no {probe}.httpGet"));
        assert_eq!(
            lookup(get, &["path"]).and_then(Yaml::as_str),
            Some(path),
            "{probe}"
        );
        let probed = lookup(get, &["port"]).and_then(|p| deployment.container_port(p));
        assert_eq!(
            probed,
            Some(port),
            "{probe} does not probe the metrics port {port}"
        );
    }

    let service = load_yaml(SERVICE);
    assert_eq!(
        lookup(&service, &["kind"]).and_then(Yaml::as_str),
        Some("Service")
    );
    let labels = lookup(&deployment.doc, &["spec", "template", "metadata", "labels"]);
    assert!(
        selects(lookup(&service, &["spec", "selector"]), labels),
        "the Service does not select the Deployment's pods"
    );
    assert!(
        selects(
            lookup(&deployment.doc, &["spec", "selector", "matchLabels"]),
            labels
        ),
        "the Deployment's selector does not match its own pods"
    );
    let service_ports = lookup(&service, &["spec", "ports"])
        .and_then(Yaml::as_vec)
        .expect("the Service has ports");
    let metrics = service_ports
        .iter()
        .find(|p| lookup(p, &["name"]).and_then(Yaml::as_str) == Some("metrics"))
        .expect("a Service port named metrics");
    let target = lookup(metrics, &["targetPort"]).and_then(|p| deployment.container_port(p));
    assert_eq!(
        target,
        Some(port),
        "the Service does not forward to the metrics port"
    );
    let annotation = |key: &str| {
        lookup(&service, &["metadata", "annotations", key])
            .and_then(scalar_text)
            .unwrap_or_else(|| panic!("the Service lacks the {key} annotation"))
    };
    assert_eq!(annotation("prometheus.io/scrape"), "true");
    assert_eq!(
        annotation("prometheus.io/port"),
        lookup(metrics, &["port"]).and_then(scalar_text).unwrap(),
        "prometheus.io/port should be the Service's metrics port"
    );
    assert_eq!(annotation("prometheus.io/path"), "/metrics");
}

#[test]
fn kubernetes_grace_period_covers_the_message_and_request_timeouts() {
    let deployment = Deployment::load();
    let grace = lookup(deployment.pod(), &["terminationGracePeriodSeconds"])
        .and_then(Yaml::as_i64)
        .expect("the pod sets terminationGracePeriodSeconds");
    let env = deployment.env_values();
    let message = duration_value(
        "KAFKA_MESSAGE_TIMEOUT_MS",
        &setting(&env, "KAFKA_MESSAGE_TIMEOUT_MS", "--message-timeout"),
    );
    let request = duration_value(
        "KAFKA_REQUEST_TIMEOUT_MS",
        &setting(&env, "KAFKA_REQUEST_TIMEOUT_MS", "--request-timeout"),
    );
    // After SIGTERM every accepted event is reported within the message timeout, and
    // the last produce request answered within the request timeout.
    assert!(
        Duration::from_secs(grace as u64) > message + request,
        "terminationGracePeriodSeconds {grace} does not cover the message timeout \
         {message:?} plus the request timeout {request:?}"
    );
}

#[test]
fn kubernetes_container_runs_unprivileged_on_a_read_only_root() {
    let deployment = Deployment::load();
    let flag = |key: &str| deployment.security(key).and_then(Yaml::as_bool);
    assert_eq!(flag("runAsNonRoot"), Some(true), "runAsNonRoot");
    assert_eq!(
        lookup(
            deployment.container(),
            &["securityContext", "allowPrivilegeEscalation"]
        )
        .and_then(Yaml::as_bool),
        Some(false),
        "allowPrivilegeEscalation"
    );
    assert_eq!(
        lookup(
            deployment.container(),
            &["securityContext", "readOnlyRootFilesystem"]
        )
        .and_then(Yaml::as_bool),
        Some(true),
        "readOnlyRootFilesystem"
    );
    let drop = lookup(
        deployment.container(),
        &["securityContext", "capabilities", "drop"],
    )
    .and_then(Yaml::as_vec)
    .expect("capabilities.drop");
    assert!(
        drop.iter().any(|c| c.as_str() == Some("ALL")),
        "drop: {drop:?}"
    );
    assert!(
        lookup(
            deployment.container(),
            &["securityContext", "capabilities", "add"]
        )
        .is_none(),
        "the producer needs no capability"
    );
    // The uid is the image's (Dockerfile USER), and not root.
    let stages = dockerfile_stages();
    let user = args_of(stages.last().unwrap(), "USER")
        .last()
        .unwrap()
        .to_string();
    let image_uid: i64 = user.split(':').next().unwrap().parse().unwrap();
    let uid = deployment.security("runAsUser").and_then(Yaml::as_i64);
    assert_eq!(
        uid,
        Some(image_uid),
        "runAsUser should be the image's uid ({user})"
    );
    // The image is the one the README builds (`docker build -t kafka-producer .`).
    let image = lookup(deployment.container(), &["image"])
        .and_then(Yaml::as_str)
        .expect("the container names its image");
    assert!(read("README.md").contains("docker build -t kafka-producer ."));
    assert_eq!(image, "kafka-producer:latest");
}

/// The largest "peak RSS ... above the pre-generated events" of ours in BENCHMARKS.md
/// (first value column), in MB, and the soak's maximum RSS in RELIABILITY.md, in MiB.
fn measured_memory() -> (f64, f64) {
    let peak_mb = read("BENCHMARKS.md")
        .lines()
        .filter(|l| l.starts_with("| peak RSS") && l.contains("above the pre-generated events"))
        .filter_map(|l| {
            l.split('|')
                .nth(2)?
                .trim()
                .trim_matches('*')
                .parse::<f64>()
                .ok()
        })
        .fold(f64::NAN, f64::max);
    assert!(peak_mb > 0.0, "BENCHMARKS.md has no peak RSS figures");
    let reliability = read("RELIABILITY.md");
    let soak = reliability
        .split_once("### Soak")
        .expect("RELIABILITY.md has a Soak section")
        .1;
    let soak_max_mib = soak
        .split_once("max")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .expect("the Soak section gives the maximum RSS as `max N MiB`");
    (peak_mb, soak_max_mib)
}

#[test]
fn kubernetes_resources_hold_the_measured_memory_and_a_full_buffer() {
    let deployment = Deployment::load();
    let quantity = |path: &[&str]| {
        lookup(deployment.container(), &[&["resources"], path].concat())
            .and_then(scalar_text)
            .unwrap_or_else(|| panic!("the container sets no resources.{}", path.join(".")))
    };
    let (peak_mb, soak_max_mib) = measured_memory();
    let request = memory_bytes(&quantity(&["requests", "memory"]));
    let limit = memory_bytes(&quantity(&["limits", "memory"]));
    assert!(
        request >= soak_max_mib * 1024.0 * 1024.0,
        "the memory request ({request} bytes) is below the soak's maximum RSS ({soak_max_mib} MiB)"
    );
    let buffer = setting(
        &deployment.env_values(),
        "KAFKA_BUFFER_MAX_BYTES",
        "--buffer-max-bytes",
    );
    let buffer_bytes = buffer
        .parse::<bytesize::ByteSize>()
        .unwrap_or_else(|e| panic!("KAFKA_BUFFER_MAX_BYTES={buffer}: {e}"))
        .as_u64() as f64;
    assert!(
        limit >= buffer_bytes + peak_mb * 1e6,
        "the memory limit ({limit} bytes) should hold a full buffer ({buffer}) plus the \
         largest peak measured at full speed ({peak_mb} MB, BENCHMARKS.md)"
    );
    let cpu_request = cpus(&quantity(&["requests", "cpu"]));
    let cpu_limit = cpus(&quantity(&["limits", "cpu"]));
    assert!(
        cpu_request > 0.0 && cpu_request <= cpu_limit,
        "cpu request {cpu_request} and limit {cpu_limit}"
    );
}

#[test]
fn kubernetes_configmap_is_what_schema_configmap_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .args(["schema", "configmap"])
        .env_clear()
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "schema configmap failed: {output:?}"
    );
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        read(CONFIGMAP) == printed,
        "{CONFIGMAP} differs from `kafka-producer schema configmap`; regenerate it with \
         `cargo run -- schema configmap > {CONFIGMAP}`"
    );
    let doc = load_yaml(CONFIGMAP);
    assert_eq!(
        lookup(&doc, &["metadata", "name"]).and_then(Yaml::as_str),
        Some("protobuf-schemas")
    );
}
