//! A real Prometheus server for tests: started on a free loopback port with a generated
//! config that scrapes one target (job `kafka-producer`), queried through its HTTP API,
//! and killed when dropped; and `promtool check metrics` for an exposition's text.
//!
//! The binaries come from Debian's `prometheus` package, unpacked into
//! `.tools/prometheus/` by `scripts/prometheus.sh` (which `make test` runs). Call
//! [`installed_or_skip`] first: under `make test` (KAFKA_PRODUCER_REQUIRE_BROKER=1) a
//! missing install fails the test, otherwise the test is skipped with a loud line.
//!
//! Everything here is blocking (std::net, std::process); from an async test call it from
//! `tokio::task::spawn_blocking` when the runtime has other work to do meanwhile.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The job name the generated config gives the scrape target; queries select it with
/// `{job="kafka-producer"}`.
pub const JOB: &str = "kafka-producer";

/// How long Prometheus may take to start answering /-/ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one HTTP request to Prometheus may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where scripts/prometheus.sh unpacks `prometheus` and `promtool`.
pub fn install_dir() -> PathBuf {
    super::repo_root().join(".tools/prometheus")
}

fn binary(name: &str) -> PathBuf {
    install_dir().join(name)
}

/// Whether both binaries are installed. When they are not: panics under `make test`,
/// otherwise prints a SKIPPED line for `test` and returns false.
pub fn installed_or_skip(test: &str) -> bool {
    let missing: Vec<PathBuf> = ["prometheus", "promtool"]
        .into_iter()
        .map(binary)
        .filter(|p| !p.is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if super::broker_required() {
        panic!(
            "{test}: {missing:?} not installed; run scripts/prometheus.sh (`make test` runs it first)"
        );
    }
    eprintln!(
        "SKIPPED {test}: no Prometheus in {} (run scripts/prometheus.sh, or `make test`)",
        install_dir().display()
    );
    false
}

/// A Prometheus server scraping one target; killed, and its data folder removed, on drop
/// (the folder is kept when the test panicked, and its path printed).
pub struct Prometheus {
    child: Child,
    /// `127.0.0.1:PORT` of its HTTP API.
    pub addr: String,
    /// Holds prometheus.yml, the TSDB (`data/`) and the server's log (`prometheus.log`).
    dir: PathBuf,
}

impl Prometheus {
    /// Starts the server on a free loopback port, scraping `http://{scrape_target}/metrics`
    /// every `interval` as job `kafka-producer`; returns once it answers /-/ready.
    /// Panics, with its log, if it exits or is not ready within 30 s.
    pub fn start(scrape_target: &str, interval: Duration) -> Prometheus {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("prometheus-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("create the Prometheus folder");
        let interval = format!("{}ms", interval.as_millis().max(1));
        let config = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\n\
             scrape_configs:\n  - job_name: {JOB}\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{scrape_target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");

        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create the log");
        let child = Command::new(binary("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary("prometheus").display()));
        let mut prometheus = Prometheus { child, addr, dir };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll prometheus") {
                panic!(
                    "prometheus exited at start-up ({status}); its log:\n{}",
                    self.log()
                );
            }
            if matches!(http_get(&self.addr, "/-/ready"), Ok((200, _))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus at {} not ready after {STARTUP_TIMEOUT:?}; its log:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The value of a PromQL instant query (`/api/v1/query`): None when it selects no
    /// series. Panics when the query is refused (a PromQL error) or selects more than one
    /// series, since the caller then asked the wrong question.
    pub fn query(&self, promql: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let (status, body) = http_get(&self.addr, &path)
            .unwrap_or_else(|e| panic!("query {promql}: {e}; prometheus log:\n{}", self.log()));
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("query {promql}: HTTP {status}, not JSON ({e}): {body}"));
        assert_eq!(
            json["status"], "success",
            "query {promql} refused (HTTP {status}): {body}"
        );
        let data = &json["data"];
        let sample = match data["resultType"].as_str() {
            Some("vector") => {
                let series = data["result"].as_array().expect("a vector is an array");
                assert!(
                    series.len() <= 1,
                    "query {promql} selects {} series, expected at most one: {body}",
                    series.len()
                );
                match series.first() {
                    None => return None,
                    Some(s) => &s["value"],
                }
            }
            Some("scalar") => &data["result"],
            other => panic!("query {promql}: result type {other:?} is not a vector or scalar"),
        };
        // [evaluation time, "value"]; the value is a string ("1", "NaN", "+Inf").
        let text = sample[1]
            .as_str()
            .unwrap_or_else(|| panic!("query {promql}: odd sample {sample}"));
        Some(
            text.parse()
                .unwrap_or_else(|e| panic!("query {promql}: value {text}: {e}")),
        )
    }

    /// Waits for a scrape of the target that began after this call and has been stored:
    /// Ok once that scrape succeeded (`up` is 1), so queries then see the target as it was
    /// at or after the call. Err, with Prometheus's reason, if that scrape failed, or if
    /// none was stored within `timeout`.
    pub fn wait_for_scrape(&self, timeout: Duration) -> Result<(), String> {
        let called_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as f64;
        let selector = format!("up{{job=\"{JOB}\"}}");
        let deadline = Instant::now() + timeout;
        loop {
            // timestamp(): the start of the scrape that stored the newest sample, in s.
            let scraped_ms = self
                .query(&format!("timestamp({selector})"))
                .map(|s| s * 1000.0);
            if scraped_ms.is_some_and(|t| t >= called_ms) {
                return match self.query(&selector) {
                    Some(1.0) => Ok(()),
                    up => Err(format!(
                        "the scrape failed (up = {up:?}): {}",
                        self.last_scrape_error()
                    )),
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no scrape of the target stored within {timeout:?} (last: {scraped_ms:?} ms, \
                     called at {called_ms} ms); target state: {}",
                    self.last_scrape_error()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The target's health and last error as /api/v1/targets reports them.
    pub fn last_scrape_error(&self) -> String {
        match http_get(&self.addr, "/api/v1/targets") {
            Ok((200, body)) => {
                let json: Value = serde_json::from_str(&body).unwrap_or_default();
                let targets = json["data"]["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                targets
                    .iter()
                    .map(|t| {
                        format!(
                            "{} health {} lastError {:?}",
                            t["scrapeUrl"], t["health"], t["lastError"]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            other => format!("/api/v1/targets: {other:?}"),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "prometheus folder kept for the failed test: {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `promtool check metrics` on `text` (on its stdin): Ok if it finds nothing wrong,
/// Err with its report if the text does not parse or breaks a lint rule (a counter
/// without `_total`, a missing HELP, ...).
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    promtool(&["check", "metrics"], text)
}

/// Runs `promtool check config FILE`: Ok if Prometheus would load the config file.
pub fn promtool_check_config(file: &Path) -> Result<(), String> {
    promtool(&["check", "config", &file.display().to_string()], "")
}

/// `promtool ARGS` with `stdin` as its input: Ok when it exits 0, Err with its output.
/// `check metrics` prints nothing when all is well, anything else is a finding.
fn promtool(args: &[&str], stdin: &str) -> Result<(), String> {
    let mut child = Command::new(binary("promtool"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary("promtool").display()));
    let mut input = child.stdin.take().expect("promtool stdin");
    let text = stdin.to_owned();
    // Written from a thread so a long report cannot fill promtool's stdout meanwhile.
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("promtool runs");
    writer
        .join()
        .expect("stdin writer")
        .expect("write promtool's stdin");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let quiet_when_good = args == ["check", "metrics"];
    if out.status.success() && (!quiet_when_good || report.trim().is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "promtool {} ({}): {}",
            args.join(" "),
            out.status,
            report.trim()
        ))
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// `GET path` on `addr` (HTTP/1.1, one request per connection): the status code and
/// the body (chunked transfer decoded). Err when the connection or the answer fails.
pub fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).ok();
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).ok();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{addr}{path}: no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{addr}{path}: bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| format!("{addr}{path}: bad chunked body"))?;
    }
    let body = String::from_utf8(body).map_err(|e| format!("{addr}{path}: body: {e}"))?;
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encoding of a query parameter (everything but unreserved characters).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
