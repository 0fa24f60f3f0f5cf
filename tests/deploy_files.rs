//! The deployment files keep the promises the README and the binary make:
//! docker-compose.yml runs `kafka` and a `producer` built from the Dockerfile, the
//! producer waits for a healthy broker and reaches it on the broker's internal
//! listener, names its settings with the variables the binary reads, and the
//! Dockerfile ships the static binary on `scratch`, as a non-root user.
//!
//! No Docker engine is needed (none runs in CI): the compose file is parsed as YAML
//! (yaml-rust2), the Dockerfile and .dockerignore are read as text.

use std::path::PathBuf;
use std::process::Command;

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
        let mut docs = YamlLoader::load_from_str(&read("docker-compose.yml"))
            .unwrap_or_else(|e| panic!("docker-compose.yml is not YAML: {e}"));
        assert_eq!(
            docs.len(),
            1,
            "docker-compose.yml should be one YAML document"
        );
        Compose(docs.remove(0))
    }

    fn node(&self, path: &[&str]) -> Option<&Yaml> {
        let mut node = &self.0;
        for key in path {
            node = node.as_hash()?.get(&Yaml::String(key.to_string()))?;
        }
        Some(node)
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
    let cli_help = help(&[]);
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
