//! `schema configmap`: the Kubernetes ConfigMap that carries the schema, written for exactly
//! its one shape. Fed a name and namespace by the `schema` command and the compiled-in proto
//! ([`super::USER_EVENT_PROTO`]); feeds back the YAML text to print.

use std::fmt;

use super::{PROTO_FILE_NAME, USER_EVENT_PROTO};

/// The Kubernetes ConfigMap that holds the schema, byte for byte as
/// `kubectl create configmap <name> --from-file=proto/ --dry-run=client -o yaml [-n <namespace>]`
/// prints it for this repository's proto/ folder (which holds only user_event.proto):
///
/// ```text
/// apiVersion: v1
/// data:
///   user_event.proto: |
///     // The UserEvent schema, ...
///     ...
/// kind: ConfigMap
/// metadata:
///   name: protobuf-schemas
///   namespace: <only when given>
/// ```
///
/// This follows kubectl 1.34 and later, which no longer print `creationTimestamp: null` under
/// `metadata` (kubernetes/kubernetes#130989, "Zero-value `metadata.creationTimestamp` values are
/// now omitted", CHANGELOG-1.34). kubectl 1.33 and older print that extra line after
/// `metadata:`; it carries no information and `kubectl apply` ignores it.
///
/// The name must be a DNS-1123 subdomain and the namespace a DNS-1123 label, as the API
/// server requires; a name YAML would read as another type (`123`, `yes`, `1e3`,
/// `2024-01-02`) is double-quoted, as kubectl's YAML writer (go-yaml v2) does.
pub fn configmap(name: &str, namespace: Option<&str>) -> Result<String, InvalidName> {
    configmap_yaml(name, namespace, PROTO_FILE_NAME, USER_EVENT_PROTO)
}

/// A ConfigMap name or namespace the API server would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    /// `name` or `namespace`.
    pub field: &'static str,
    pub value: String,
    /// What is allowed, as a phrase.
    pub allowed: &'static str,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConfigMap {} '{}' is not allowed by Kubernetes: use {}",
            self.field, self.value, self.allowed
        )
    }
}

impl std::error::Error for InvalidName {}

const SUBDOMAIN: &str = "a DNS-1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', \
                         each dot-separated part starting and ending with a letter or digit";
const LABEL: &str = "a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-', starting \
                     and ending with a letter or digit";

/// `configmap` for one file of any content that kubectl writes as a literal block.
fn configmap_yaml(
    name: &str,
    namespace: Option<&str>,
    file: &str,
    content: &str,
) -> Result<String, InvalidName> {
    if !is_dns1123_subdomain(name) {
        return Err(InvalidName {
            field: "name",
            value: name.to_string(),
            allowed: SUBDOMAIN,
        });
    }
    if let Some(namespace) = namespace
        && !is_dns1123_label(namespace)
    {
        return Err(InvalidName {
            field: "namespace",
            value: namespace.to_string(),
            allowed: LABEL,
        });
    }
    let mut yaml = format!("apiVersion: v1\ndata:\n  {file}: ");
    yaml.push_str(&literal_block(content, 4));
    yaml.push_str("kind: ConfigMap\nmetadata:\n");
    yaml.push_str(&format!("  name: {}\n", scalar(name)));
    if let Some(namespace) = namespace {
        yaml.push_str(&format!("  namespace: {}\n", scalar(namespace)));
    }
    Ok(yaml)
}

/// `text` as a YAML literal block scalar (`|`), its lines indented by `indent`, empty lines
/// left empty, ending with a line break. The header says what a plain `|` could not: `2` (the
/// indentation) when the text starts with a space or a line break, `-` when it does not end
/// with a line break, `+` when it ends with more than one.
///
/// Only for what kubectl also writes as a literal block: text with a line break, no line
/// ending in a space, and only the characters go-yaml prints as they are (no tabs, carriage
/// returns or other controls, nothing beyond U+FFFF). The compiled-in schema is such a text,
/// as a test below checks; other content would need kubectl's double-quoted style.
fn literal_block(text: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if text.starts_with([' ', '\n']) {
        out.push('2');
    }
    if !text.ends_with('\n') {
        out.push('-');
    } else if text == "\n" || text.ends_with("\n\n") {
        out.push('+');
    }
    out.push('\n');
    let mut line_start = true;
    for c in text.chars() {
        if c == '\n' {
            out.push('\n');
            line_start = true;
        } else {
            if line_start {
                out.extend(std::iter::repeat_n(' ', indent));
            }
            out.push(c);
            line_start = false;
        }
    }
    if !line_start {
        out.push('\n');
    }
    out
}

/// Whether kubectl writes `text` as a literal block (go-yaml's emitter analysis): see
/// [`literal_block`]. Test-only: the one text this writes is compiled in, and a test checks it.
#[cfg(test)]
fn literal_block_fits(text: &str) -> bool {
    let printable = |c: char| {
        matches!(c, '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            && !matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
    };
    text.contains('\n')
        && text.chars().all(printable)
        && !text.ends_with(' ')
        && !text.contains(" \n")
}

/// A DNS-1123 subdomain: what Kubernetes requires of most object names.
fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_label_part)
}

/// A DNS-1123 label: what Kubernetes requires of a namespace.
fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && is_label_part(name)
}

fn is_label_part(part: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// A DNS-1123 name as go-yaml writes a string: plain, or double-quoted when YAML 1.1 would
/// read it back as a bool, null, number or date. (Within a-z, 0-9, '-' and '.' nothing else
/// needs quotes or escapes.)
fn scalar(dns_name: &str) -> String {
    if reads_as_other_type(dns_name) {
        format!("\"{dns_name}\"")
    } else {
        dns_name.to_string()
    }
}

/// go-yaml's resolve.go for the strings a DNS-1123 name can be: the lowercase bool and null
/// words, and, for a name starting with a digit, an integer (Go's `ParseInt(s, 0, 64)` syntax,
/// of any size), a finite float or a valid `YYYY-M-D` date.
fn reads_as_other_type(name: &str) -> bool {
    const WORDS: [&str; 9] = ["y", "yes", "n", "no", "true", "false", "on", "off", "null"];
    WORDS.contains(&name)
        || (name.starts_with(|c: char| c.is_ascii_digit())
            && (is_go_int(name) || is_float(name) || is_date(name)))
}

fn digits(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_digit(radix))
}

fn is_go_int(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("0x") {
        digits(hex, 16)
    } else if let Some(octal) = s.strip_prefix("0o") {
        digits(octal, 8)
    } else if let Some(binary) = s.strip_prefix("0b") {
        digits(binary, 2)
    } else if let Some(octal) = s.strip_prefix('0') {
        octal.is_empty() || digits(octal, 8)
    } else {
        digits(s, 10)
    }
}

/// `[0-9]+(\.[0-9]*)?(e[-+]?[0-9]+)?` with a finite value (Go's ParseFloat rejects overflow).
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            digits(whole, 10) && (fraction.is_empty() || digits(fraction, 10))
        }
        None => digits(mantissa, 10),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `YYYY-M-D` naming a day that exists (go-yaml parses it with Go's `time.Parse`).
fn is_date(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let number = |t: &str, max_len: usize| {
        (digits(t, 10) && t.len() <= max_len)
            .then(|| t.parse::<u32>().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) = (
        number(year, 4).filter(|_| year.len() == 4),
        number(month, 2),
        number(day, 2),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use yaml_rust2::YamlLoader;

    use super::super::CONFIGMAP_NAME;
    use super::*;

    /// The ConfigMap for this repository's schema, as kubectl prints it: every line of the
    /// file indented by 4, empty lines left empty.
    fn expected_configmap(namespace: Option<&str>) -> String {
        let mut expected = String::from("apiVersion: v1\ndata:\n  user_event.proto: |\n");
        for line in USER_EVENT_PROTO.lines() {
            if !line.is_empty() {
                expected.push_str("    ");
            }
            expected.push_str(line);
            expected.push('\n');
        }
        expected.push_str("kind: ConfigMap\nmetadata:\n  name: protobuf-schemas\n");
        if let Some(namespace) = namespace {
            expected.push_str(&format!("  namespace: {namespace}\n"));
        }
        expected
    }

    #[test]
    fn configmap_matches_kubectl_output_for_the_schema() {
        assert_eq!(
            configmap(CONFIGMAP_NAME, None),
            Ok(expected_configmap(None))
        );
        assert_eq!(
            configmap(CONFIGMAP_NAME, Some("streaming")),
            Ok(expected_configmap(Some("streaming")))
        );
    }

    #[test]
    fn the_schema_is_a_text_kubectl_writes_as_a_literal_block() {
        assert!(literal_block_fits(USER_EVENT_PROTO));
    }

    #[test]
    fn configmap_parses_as_yaml_holding_the_schema_and_name() {
        let text = configmap("protobuf-schemas", Some("prod")).unwrap();
        let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(doc["apiVersion"].as_str(), Some("v1"));
        assert_eq!(doc["kind"].as_str(), Some("ConfigMap"));
        assert_eq!(
            doc["data"]["user_event.proto"].as_str(),
            Some(USER_EVENT_PROTO)
        );
        assert_eq!(doc["metadata"]["name"].as_str(), Some("protobuf-schemas"));
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some("prod"));

        let doc = &YamlLoader::load_from_str(&configmap("other", None).unwrap()).unwrap()[0];
        assert_eq!(doc["metadata"]["name"].as_str(), Some("other"));
        assert!(
            doc["metadata"]["namespace"].is_badvalue(),
            "no namespace unless given"
        );
        assert!(doc["metadata"]["creationTimestamp"].is_badvalue());
    }

    #[test]
    fn configmap_covers_every_file_in_the_proto_folder() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let mut files: Vec<String> = std::fs::read_dir(&folder)
            .expect("proto/ folder")
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [PROTO_FILE_NAME],
            "kubectl --from-file=proto/ would add every file; configmap() only has {PROTO_FILE_NAME}"
        );
    }

    /// The `data` entry of `kubectl create configmap x --from-file=<dir> --dry-run=client -o
    /// yaml` (kubectl v1.33.1) for files it writes as literal blocks.
    #[test]
    fn literal_blocks_carry_the_header_kubectl_writes() {
        let cases = [
            ("  leading\nline\n", "|2\n      leading\n    line\n"),
            (
                "no newline at end\nsecond",
                "|-\n    no newline at end\n    second\n",
            ),
            (
                "trailing blank lines\n\n\n",
                "|+\n    trailing blank lines\n\n\n",
            ),
            ("ünïcödé\nx\n", "|\n    ünïcödé\n    x\n"),
            ("\nstarts with newline\n", "|2\n\n    starts with newline\n"),
            ("nbsp\u{a0}x\n", "|\n    nbsp\u{a0}x\n"),
        ];
        for (content, block) in cases {
            assert!(literal_block_fits(content), "{content:?}");
            let text = configmap_yaml("x", None, "a.txt", content).unwrap();
            let expected = format!(
                "apiVersion: v1\ndata:\n  a.txt: {block}kind: ConfigMap\nmetadata:\n  name: x\n"
            );
            assert_eq!(text, expected, "{content:?}");
        }
    }

    /// Texts kubectl writes double-quoted instead (a line ending in a space, a tab, a
    /// carriage return, a character beyond U+FFFF, no line break at all).
    #[test]
    fn texts_kubectl_would_quote_are_not_taken_for_literal_blocks() {
        for content in [
            "trailing space \nx\n",
            "tab\there\n",
            "emoji \u{1f980}\nx\n",
            "ends with space\nx \n",
            "cr\rx\n",
            "inner  \n\nend\n",
            "single line",
        ] {
            assert!(!literal_block_fits(content), "{content:?}");
        }
    }

    /// kubectl v1.33.1's `metadata.name` line for each name.
    #[test]
    fn configmap_quotes_names_yaml_would_read_as_other_types() {
        let cases = [
            ("protobuf-schemas", "protobuf-schemas"),
            ("a.b", "a.b"),
            ("2024-02-30", "2024-02-30"),
            ("1e999", "1e999"),
            ("123", "\"123\""),
            ("yes", "\"yes\""),
            ("on", "\"on\""),
            ("null", "\"null\""),
            ("y", "\"y\""),
            ("n", "\"n\""),
            ("true", "\"true\""),
            ("1e3", "\"1e3\""),
            ("1e-3", "\"1e-3\""),
            ("1.5", "\"1.5\""),
            ("2024-01-02", "\"2024-01-02\""),
            ("2023-2-29", "2023-2-29"),
            ("2024-2-29", "\"2024-2-29\""),
            ("0x1f", "\"0x1f\""),
            ("0o17", "\"0o17\""),
            ("0b101", "\"0b101\""),
            ("007", "\"007\""),
            ("09", "\"09\""),
        ];
        for (name, printed) in cases {
            let text = configmap(name, None).unwrap();
            let line = text.lines().find(|l| l.starts_with("  name: ")).unwrap();
            assert_eq!(line, format!("  name: {printed}"), "name {name:?}");
            if name.contains('.') {
                continue; // not a DNS-1123 label
            }
            let text = configmap("x", Some(name)).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("  namespace: "))
                .unwrap();
            assert_eq!(
                line,
                format!("  namespace: {printed}"),
                "namespace {name:?}"
            );
        }
    }

    #[test]
    fn names_kubernetes_refuses_are_errors_that_say_what_is_allowed() {
        for name in [
            "", "-", "...", "Protobuf", "a_b", ".5", "1.", "a..b", "-a", "a-",
        ] {
            let error = configmap(name, None).unwrap_err();
            assert_eq!((error.field, error.value.as_str()), ("name", name));
            assert!(error.to_string().contains("DNS-1123 subdomain"), "{error}");
        }
        assert!(configmap(&"a".repeat(253), None).is_ok());
        assert!(configmap(&"a".repeat(254), None).is_err());
        for namespace in ["a.b", "Prod", "", "-x"] {
            let error = configmap("x", Some(namespace)).unwrap_err();
            assert_eq!(error.field, "namespace", "{namespace:?}");
            assert!(error.to_string().contains("DNS-1123 label"), "{error}");
        }
        assert!(configmap("x", Some(&"a".repeat(63))).is_ok());
        assert!(configmap("x", Some(&"a".repeat(64))).is_err());
    }
}
