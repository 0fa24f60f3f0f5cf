//! Every numeric and enumerated option of every command, walked from the CLI's own clap
//! definition, given values out of its range: the real binary must refuse each before it
//! connects, with exit code 2, one error naming the option and what it allows, no panic.
//! Walked the same way: the headings `--help` shows them under. And the commands that only
//! read (`consume`, `verify`) are not stopped by a bad batching setting.

// The CLI lives in the binary; its definition is compiled in here as well, so that the
// walk is over the options as they are defined and a new option cannot escape it.
#[allow(dead_code, unused_imports)]
#[path = "../src/cli/mod.rs"]
mod cli;

use std::process::Command;

/// Options whose value is free text (names, addresses, paths): no value is out of range.
const TEXT_OPTIONS: [&str; 9] = [
    "broker",
    "topic",
    "username",
    "password",
    "ca-file",
    "input",
    "name",
    "namespace",
    "file",
];

/// Values no numeric or enumerated option takes: negative, fractional, NaN, infinite,
/// vanishingly small, overflowing integers and units, not a number at all.
const NO_OPTION_TAKES: [&str; 12] = [
    "-1",
    "-0.5",
    "NaN",
    "inf",
    "-inf",
    "1e-300",
    "1e400",
    "99999999999999999999",
    "99999999999999999999s",
    "18446744073709551616",
    "0x10",
    "ten",
];

/// For each option, values just outside what it takes: zero where zero means nothing, one
/// past each end of its range, the largest integers. An option walked but missing here
/// fails the test, so each new option comes with its extremes.
const OUT_OF_RANGE: &[(&str, &[&str])] = &[
    ("sasl-mechanism", &["", "PLAINTEXT"]),
    (
        "connect-timeout",
        &["0", "999ms", "3601s", "18446744073709551615"],
    ),
    (
        "batch-max-records",
        &["0", "1000001", "18446744073709551615"],
    ),
    (
        "batch-max-bytes",
        &["0", "999", "100000001", "1TiB", "16EiB"],
    ),
    ("linger", &["901s", "18446744073709551615", "1000years"]),
    ("message-timeout", &["0", "3601s", "18446744073709551615"]),
    ("buffer-max-bytes", &["0", "999", "4GiB", "16EiB"]),
    (
        "buffer-max-records",
        &["0", "2147483648", "18446744073709551615"],
    ),
    ("compression", &["", "brotli", "ZSTD2"]),
    ("metadata-refresh", &["0", "99ms", "3601s"]),
    ("partitioner", &["", "random"]),
    ("idempotence", &["maybe"]),
    ("max-in-flight", &["0", "1001", "18446744073709551615"]),
    ("max-request-bytes", &["0", "999", "1000000001", "16EiB"]),
    (
        "request-timeout",
        &["0", "99ms", "3601s", "18446744073709551615"],
    ),
    ("retry-backoff", &["61s", "18446744073709551615"]),
    ("log-format", &["", "yaml", "JSON5"]),
    (
        "metrics-addr",
        // Not an address, a port out of range, and one this machine cannot listen on.
        &[
            "",
            "localhost",
            "127.0.0.1:99999",
            "999.0.0.1:80",
            "192.0.2.1:9464",
        ],
    ),
    ("count", &["0"]),
    (
        "duration",
        &["366d", "18446744073709551615s", "1000000000years"],
    ),
    ("rate", &["0", "0.0009", "100000001", "1e308"]),
    ("users", &["0"]),
    ("seed", &[]),
    ("partitions", &["0", "4097", "2147483648"]),
    ("replication-factor", &["0", "32768"]),
    ("summary", &["", "yaml"]),
    ("from", &["", "middle"]),
    ("partition", &["2147483648"]),
    ("expect", &[]),
];

/// Words that say what an option allows, one of which every refusal must carry.
const ALLOWED_WORDS: [&str; 4] = ["must be", "allowed:", "possible values", "expected one of"];

/// `(command path, option)` for every option that takes a value, of every command.
fn walked_options() -> Vec<(Vec<String>, clap::Arg)> {
    fn walk(command: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Arg)>) {
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if arg.get_action().takes_values() && !TEXT_OPTIONS.contains(&long) {
                out.push((path.clone(), arg.clone()));
            }
        }
        for sub in command.get_subcommands() {
            let mut sub_path = path.clone();
            sub_path.push(sub.get_name().to_string());
            walk(sub, sub_path, out);
        }
    }
    let mut out = Vec::new();
    walk(&cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn every_numeric_and_enumerated_option_refuses_extreme_values_before_connecting() {
    let options = walked_options();
    assert!(
        options.len() >= 20,
        "the walk found only {} options: {:?}",
        options.len(),
        options.iter().map(|(_, a)| a.get_id()).collect::<Vec<_>>()
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    for (path, arg) in &options {
        let long = arg.get_long().unwrap();
        let Some((_, extremes)) = OUT_OF_RANGE.iter().find(|(name, _)| *name == long) else {
            failures.push(format!(
                "--{long} ({}) has no entry in OUT_OF_RANGE: add its extremes",
                path.join(" ")
            ));
            continue;
        };
        for value in NO_OPTION_TAKES.iter().chain(extremes.iter()) {
            runs += 1;
            // Port 1 on loopback refuses connections: reaching it would print a cluster error.
            let out = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
                .env("KAFKA_BROKER", "127.0.0.1:1")
                .env_remove("RUST_LOG")
                .args(path)
                .arg(format!("--{long}={value}"))
                .output()
                .expect("the binary runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().next().unwrap_or("");
            let problems: Vec<&str> = [
                (out.status.code() != Some(2), "exit code is not 2"),
                (stderr.contains("panicked"), "it panicked"),
                (stderr.contains("cannot reach"), "it tried to connect"),
                (
                    !first.contains(&format!("--{long}")),
                    "the first line does not name the option",
                ),
                (
                    !ALLOWED_WORDS.iter().any(|w| stderr.contains(w)),
                    "it does not say what is allowed",
                ),
            ]
            .into_iter()
            .filter_map(|(bad, what)| bad.then_some(what))
            .collect();
            if !problems.is_empty() {
                failures.push(format!(
                    "kafka-producer {} --{long}={value}: {} (exit {:?}); stderr: {stderr}",
                    path.join(" "),
                    problems.join(", "),
                    out.status.code()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `--help` groups the options of each command under headings, as cargo and ripgrep do:
/// each shared set of options under its own, and every option of `produce` under one.
#[test]
fn help_shows_each_set_of_options_under_its_heading() {
    const HEADINGS: [(&str, &str); 2] = [
        ("ConnectionArgs", "Connection"),
        ("EngineArgs", "Batching and delivery"),
    ];
    const PRODUCE_HEADINGS: [&str; 5] = [
        "Connection",
        "Batching and delivery",
        "Source",
        "Topic creation",
        "Output",
    ];
    fn commands(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), command.clone()));
        for sub in command.get_subcommands() {
            commands(sub, format!("{path} {}", sub.get_name()), out);
        }
    }
    // Built, so that the global options stand in every subcommand too.
    let mut root = cli::command();
    root.build();
    let mut all = Vec::new();
    commands(&root, String::new(), &mut all);
    // The options each shared set (a clap group named after its struct) defines.
    let member_of = |group: &str, id: &clap::Id| {
        all.iter().any(|(_, c)| {
            c.get_groups()
                .any(|g| g.get_id() == group && g.get_args().any(|a| a == id))
        })
    };
    let mut failures = Vec::new();
    for (path, command) in &all {
        for arg in command.get_arguments() {
            let (Some(long), heading) = (arg.get_long(), arg.get_help_heading()) else {
                continue;
            };
            for (group, expected) in HEADINGS {
                let member = member_of(group, arg.get_id());
                if member != (heading == Some(expected)) {
                    failures.push(format!(
                        "{path} --{long}: under {heading:?}, member of {group}: {member}"
                    ));
                }
            }
            let shown = !arg.is_hide_set() && !matches!(long, "help" | "version");
            if path.trim() == "produce"
                && shown
                && !heading.is_some_and(|h| PRODUCE_HEADINGS.contains(&h))
            {
                failures.push(format!("produce --{long}: under {heading:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_entry_of_the_table_is_an_option_that_exists() {
    let longs: Vec<String> = walked_options()
        .iter()
        .map(|(_, arg)| arg.get_long().unwrap().to_string())
        .collect();
    for (name, _) in OUT_OF_RANGE {
        assert!(
            longs.iter().any(|l| l == name),
            "OUT_OF_RANGE names --{name}, which no command has (renamed? then rename it here)"
        );
    }
}

#[test]
fn the_run_without_a_command_refuses_extreme_values_in_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .env("KAFKA_BROKER", "127.0.0.1:1")
        .env("KAFKA_LINGER_MS", "99999999999999999999")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: invalid value '99999999999999999999' for '--linger"),
        "{stderr}"
    );
    assert!(
        stderr.contains("must be a duration from 0 to 15m"),
        "{stderr}"
    );
}

#[test]
fn extreme_values_in_the_environment_are_refused_too() {
    for (variable, value) in [
        ("KAFKA_LINGER_MS", "99999999999999999999"),
        ("KAFKA_BUFFER_MAX_BYTES", "16EiB"),
        ("KAFKA_CONNECT_TIMEOUT_S", "0"),
        ("PRODUCE_RATE", "1e-300"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
            .env("KAFKA_BROKER", "127.0.0.1:1")
            .env(variable, value)
            .args(["produce", "--count", "1"])
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains("must be"), "{variable}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{variable}={value}: {stderr}");
    }
}

#[test]
fn consume_and_verify_ignore_the_engine_settings_in_the_environment() {
    for command in ["consume", "verify"] {
        let out = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
            .env("KAFKA_BROKER", "127.0.0.1:1")
            .env("KAFKA_CONNECT_TIMEOUT_S", "1")
            .env("KAFKA_BATCH_MAX_BYTES", "0")
            .env("KAFKA_LINGER_MS", "99999999999999999999")
            .arg(command)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Past the options: it tried the (unreachable) broker, exit 3.
        assert_eq!(out.status.code(), Some(3), "{command}: {stderr}");
        assert!(stderr.contains("cannot reach"), "{command}: {stderr}");
    }
}
