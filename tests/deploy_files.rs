//! The deployment files keep the promises the README and the binary make:
//! docker-compose.yml runs `kafka` and a `producer` built from the Dockerfile, the
//! producer waits for a healthy broker and reaches it on the broker's internal
//! listener, names its settings with the variables the binary reads, and the
//! Dockerfile ships the static binary on `scratch`, as a non-root user.
//!
//! No Docker engine is needed (none runs in CI): the files are read as text. The
//! compose file is read with a small indentation-based reader for the YAML subset
//! it uses (block mappings, flow lists); a change to another YAML style makes these
//! tests fail loudly rather than pass by accident.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    let path = repo().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// A reader for the YAML subset docker-compose.yml uses.
// ---------------------------------------------------------------------------

/// One significant line: indentation and text (comments and blank lines dropped).
#[derive(Clone, Copy, Debug)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

fn yaml_lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .filter_map(|raw| {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return None;
            }
            assert!(
                !raw.starts_with('\t'),
                "tab indentation is not YAML: {raw:?}"
            );
            Some(Line {
                indent: raw.len() - trimmed.len(),
                text: trimmed.trim_end(),
            })
        })
        .collect()
}

/// A mapping node: its lines (all more indented than the key that owns it).
#[derive(Clone, Debug)]
struct Node<'a> {
    lines: Vec<Line<'a>>,
}

/// What a key holds: an inline value (`key: value`), or a nested block.
#[derive(Clone, Debug)]
struct Entry<'a> {
    inline: Option<String>,
    block: Node<'a>,
}

impl<'a> Node<'a> {
    fn top(text: &'a str) -> Self {
        Node {
            lines: yaml_lines(text),
        }
    }

    fn base_indent(&self) -> Option<usize> {
        self.lines.iter().map(|l| l.indent).min()
    }

    /// The keys of this mapping, in order.
    fn keys(&self) -> Vec<String> {
        let Some(base) = self.base_indent() else {
            return Vec::new();
        };
        self.lines
            .iter()
            .filter(|l| l.indent == base && !l.text.starts_with("- "))
            .filter_map(|l| l.text.split_once(':').map(|(k, _)| unquote(k)))
            .collect()
    }

    fn entry(&self, key: &str) -> Option<Entry<'a>> {
        let base = self.base_indent()?;
        let start = self.lines.iter().position(|l| {
            l.indent == base
                && l.text
                    .split_once(':')
                    .is_some_and(|(k, _)| unquote(k) == key)
        })?;
        let (_, rest) = self.lines[start].text.split_once(':').unwrap();
        let rest = rest.trim();
        let block: Vec<Line<'a>> = self.lines[start + 1..]
            .iter()
            .take_while(|l| l.indent > base)
            .copied()
            .collect();
        Some(Entry {
            inline: (!rest.is_empty()).then(|| rest.to_string()),
            block: Node { lines: block },
        })
    }

    /// Follows a path of keys through nested mappings.
    fn at(&self, path: &[&str]) -> Option<Entry<'a>> {
        let (first, rest) = path.split_first()?;
        let mut entry = self.entry(first)?;
        for key in rest {
            entry = entry.block.entry(key)?;
        }
        Some(entry)
    }

    /// The scalar at `path`, unquoted.
    fn scalar(&self, path: &[&str]) -> Option<String> {
        self.at(path)?.inline.map(|v| unquote(&v))
    }

    /// The list at `path`: a flow list `[a, "b"]` or a block list of `- item` lines.
    fn list(&self, path: &[&str]) -> Option<Vec<String>> {
        let entry = self.at(path)?;
        if let Some(inline) = entry.inline {
            let inner = inline
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or_else(|| panic!("{path:?} is neither a flow list nor a block: {inline}"));
            return Some(split_flow(inner));
        }
        let base = entry.block.base_indent()?;
        Some(
            entry
                .block
                .lines
                .iter()
                .filter(|l| l.indent == base)
                .filter_map(|l| l.text.strip_prefix("- ").map(unquote))
                .collect(),
        )
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Splits the inside of a flow list on commas that are not inside quotes.
fn split_flow(inner: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in inner.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), _) if c == q => {
                quote = None;
                current.push(c);
            }
            (None, ',') => {
                items.push(unquote(&current));
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        items.push(unquote(&current));
    }
    items
}

fn compose_text() -> String {
    read("docker-compose.yml")
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
    let text = compose_text();
    let compose = Node::top(&text);
    let services = compose
        .entry("services")
        .expect("compose has `services`")
        .block;
    let keys = services.keys();
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
fn producer_starts_only_once_kafka_is_healthy() {
    let text = compose_text();
    let compose = Node::top(&text);
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
    let text = compose_text();
    let compose = Node::top(&text);
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
    let text = compose_text();
    let compose = Node::top(&text);
    let env = compose
        .at(&["services", "producer", "environment"])
        .expect("producer has an environment mapping")
        .block;
    let names = env.keys();
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
        env.scalar(&["KAFKA_TOPIC"]).as_deref(),
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
    let text = compose_text();
    let compose = Node::top(&text);
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
    let text = compose_text();
    let compose = Node::top(&text);
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
    let text = compose_text();
    let compose = Node::top(&text);
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

#[test]
fn docker_build_context_has_the_sources_and_not_the_build_output() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').trim_start_matches('/'))
        .collect();
    for excluded in ["target", ".kafka", "dist"] {
        assert!(
            patterns.contains(&excluded),
            ".dockerignore does not exclude {excluded}/"
        );
    }
    // Everything the builder COPYs from the context exists and is not ignored.
    let stages = dockerfile_stages();
    for copy in stages.iter().flat_map(|s| args_of(s, "COPY")) {
        if copy.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = copy
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                Path::new(&repo().join(source)).exists(),
                "COPY {source}: no such file in the repo"
            );
            assert!(
                !patterns.contains(source),
                "COPY {source}, but .dockerignore excludes it"
            );
        }
    }
}
