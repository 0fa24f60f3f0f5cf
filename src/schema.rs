//! The schema tools that replace the original `make validate` / `make sync`: the
//! compiled-in `.proto`, a wire-compatibility check of a proposed version, and the
//! Kubernetes ConfigMap. Fed by the CLI's `schema` command; needs no protoc or kubectl.

use std::collections::BTreeMap;
use std::fmt;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};

/// The schema file's name, as the ConfigMap key.
pub const PROTO_FILE_NAME: &str = "user_event.proto";
/// The schema this binary was built with.
pub const USER_EVENT_PROTO: &str = include_str!("../proto/user_event.proto");
/// The ConfigMap name the original `make sync` used.
pub const DEFAULT_CONFIGMAP_NAME: &str = "protobuf-schemas";

/// How bad a change is for existing producers and consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Old and new readers would misread each other's bytes.
    Breaking,
    /// Wire-compatible, but breaks the JSON mapping or generated code.
    Warning,
}

/// One finding of `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    pub kind: Severity,
    pub what: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.kind {
            Severity::Breaking => "breaking",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}", self.what)
    }
}

/// Parses a .proto source with protox (no protoc) into its descriptor.
fn parse(source: &str) -> Result<FileDescriptorProto, String> {
    let dir = std::env::temp_dir().join(format!(
        "kafka-producer-schema-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(PROTO_FILE_NAME);
    std::fs::write(&path, source).map_err(|e| e.to_string())?;
    let result = protox::compile([PROTO_FILE_NAME], [&dir]);
    let _ = std::fs::remove_dir_all(&dir);
    let set = result.map_err(|e| {
        format!("{e:?}")
            .lines()
            .take(12)
            .collect::<Vec<_>>()
            .join(" ")
    })?;
    set.file
        .into_iter()
        .find(|f| f.name() == PROTO_FILE_NAME)
        .ok_or_else(|| "the file declares nothing".to_string())
}

/// Reports the changes of `proposed_source` against the compiled-in schema that would
/// break the wire format (or, as warnings, the JSON mapping). Err on a syntax error.
pub fn check(proposed_source: &str) -> Result<Vec<Incompatibility>, String> {
    let old = parse(USER_EVENT_PROTO).expect("the compiled-in schema parses");
    let new = parse(proposed_source)?;
    let mut findings = Vec::new();
    let mut breaking = |what: String| {
        findings.push(Incompatibility {
            kind: Severity::Breaking,
            what,
        })
    };
    if old.package() != new.package() {
        breaking(format!(
            "package changed from '{}' to '{}'",
            old.package(),
            new.package()
        ));
    }
    let new_messages: BTreeMap<&str, &DescriptorProto> =
        new.message_type.iter().map(|m| (m.name(), m)).collect();
    let new_enums: BTreeMap<&str, &EnumDescriptorProto> =
        new.enum_type.iter().map(|e| (e.name(), e)).collect();
    let mut warnings = Vec::new();
    for old_message in &old.message_type {
        match new_messages.get(old_message.name()) {
            None => breaking(format!("message {} was removed", old_message.name())),
            Some(new_message) => {
                compare_message(old_message, new_message, &mut breaking, &mut warnings)
            }
        }
    }
    for old_enum in &old.enum_type {
        match new_enums.get(old_enum.name()) {
            None => breaking(format!("enum {} was removed", old_enum.name())),
            Some(new_enum) => compare_enum(old_enum, new_enum, &mut breaking),
        }
    }
    findings.extend(warnings.into_iter().map(|what| Incompatibility {
        kind: Severity::Warning,
        what,
    }));
    Ok(findings)
}

fn type_name(field: &prost_types::FieldDescriptorProto) -> String {
    let base = match field.r#type() {
        Type::Message | Type::Enum => field.type_name().trim_start_matches('.').to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.label() == Label::Repeated {
        format!("repeated {base}")
    } else {
        base
    }
}

fn compare_message(
    old: &DescriptorProto,
    new: &DescriptorProto,
    breaking: &mut impl FnMut(String),
    warnings: &mut Vec<String>,
) {
    let message = old.name();
    let reserved_number = |n: i32| {
        new.reserved_range
            .iter()
            .any(|r| r.start() <= n && n < r.end())
    };
    let reserved_name = |name: &str| new.reserved_name.iter().any(|r| r == name);
    for field in &old.field {
        let number = field.number();
        match new.field.iter().find(|f| f.number() == number) {
            None if reserved_number(number) || reserved_name(field.name()) => {}
            None => breaking(format!(
                "{message}.{} (field {number}) was removed without `reserved {number};`",
                field.name()
            )),
            Some(new_field) => {
                let (was, now) = (type_name(field), type_name(new_field));
                if was != now {
                    breaking(format!(
                        "{message}.{} (field {number}): type changed from {was} to {now}",
                        field.name()
                    ));
                } else if field.name() != new_field.name() {
                    warnings.push(format!(
                        "{message}.{} (field {number}) renamed to {}: same bytes on the wire, but JSON and code change",
                        field.name(),
                        new_field.name()
                    ));
                }
            }
        }
    }
    let nested: BTreeMap<&str, &DescriptorProto> =
        new.nested_type.iter().map(|m| (m.name(), m)).collect();
    for old_nested in &old.nested_type {
        if let Some(new_nested) = nested.get(old_nested.name()) {
            compare_message(old_nested, new_nested, breaking, warnings);
        }
    }
}

fn compare_enum(
    old: &EnumDescriptorProto,
    new: &EnumDescriptorProto,
    breaking: &mut impl FnMut(String),
) {
    let name = old.name();
    for value in &old.value {
        match new.value.iter().find(|v| v.name() == value.name()) {
            Some(v) if v.number() != value.number() => breaking(format!(
                "{name}.{}: number changed from {} to {}",
                value.name(),
                value.number(),
                v.number()
            )),
            Some(_) => {}
            None => {
                let reused = new.value.iter().any(|v| v.number() == value.number());
                let reserved = new
                    .reserved_range
                    .iter()
                    .any(|r| r.start() <= value.number() && value.number() <= r.end())
                    || new.reserved_name.iter().any(|r| r == value.name());
                if !reused && !reserved {
                    breaking(format!(
                        "{name}.{} (= {}) was removed without being reserved",
                        value.name(),
                        value.number()
                    ));
                }
            }
        }
    }
}

/// The ConfigMap `kubectl create configmap NAME --from-file=proto/ --dry-run=client -o yaml`
/// prints for the proto/ folder (kubectl 1.2x layout, including `creationTimestamp: null`).
pub fn configmap(name: &str, namespace: Option<&str>) -> String {
    let mut yaml = String::from("apiVersion: v1\ndata:\n");
    yaml.push_str(&format!("  {PROTO_FILE_NAME}: |\n"));
    for line in USER_EVENT_PROTO.lines() {
        if line.is_empty() {
            yaml.push('\n');
        } else {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    yaml.push_str("kind: ConfigMap\nmetadata:\n  creationTimestamp: null\n");
    yaml.push_str(&format!("  name: {name}\n"));
    if let Some(ns) = namespace {
        yaml.push_str(&format!("  namespace: {ns}\n"));
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaking(findings: &[Incompatibility]) -> Vec<&Incompatibility> {
        findings
            .iter()
            .filter(|f| f.kind == Severity::Breaking)
            .collect()
    }

    #[test]
    fn the_compiled_in_schema_is_compatible_with_itself() {
        assert_eq!(check(USER_EVENT_PROTO).unwrap(), vec![]);
    }

    #[test]
    fn adding_an_optional_field_is_compatible() {
        let proposed = USER_EVENT_PROTO.replace(
            "  map<string, string> metadata = 3;",
            "  map<string, string> metadata = 3;\n  optional string country = 4;",
        );
        assert_eq!(check(&proposed).unwrap(), vec![]);
    }

    #[test]
    fn changing_a_field_type_is_breaking() {
        let proposed = USER_EVENT_PROTO.replace("string user_id = 3;", "int64 user_id = 3;");
        let found = check(&proposed).unwrap();
        assert_eq!(breaking(&found).len(), 1, "{found:?}");
        assert!(
            found[0]
                .what
                .contains("UserEvent.user_id (field 3): type changed from string to int64"),
            "{found:?}"
        );
    }

    #[test]
    fn renumbering_a_field_is_breaking() {
        let proposed = USER_EVENT_PROTO.replace("string user_id = 3;", "string user_id = 6;");
        let found = check(&proposed).unwrap();
        assert!(
            found
                .iter()
                .any(|f| f.kind == Severity::Breaking && f.what.contains("field 3")),
            "{found:?}"
        );
    }

    #[test]
    fn removing_a_field_needs_a_reservation() {
        let removed = USER_EVENT_PROTO.replace("  string user_id = 3;\n", "");
        assert_eq!(breaking(&check(&removed).unwrap()).len(), 1);
        let reserved = USER_EVENT_PROTO.replace("  string user_id = 3;\n", "  reserved 3;\n");
        assert_eq!(check(&reserved).unwrap(), vec![]);
    }

    #[test]
    fn renumbering_an_enum_value_is_breaking() {
        let proposed = USER_EVENT_PROTO.replace("USER_LOGOUT = 3;", "USER_LOGOUT = 4;");
        let found = check(&proposed).unwrap();
        assert!(
            found
                .iter()
                .any(|f| f.what.contains("USER_LOGOUT: number changed from 3 to 4")),
            "{found:?}"
        );
    }

    #[test]
    fn a_syntax_error_is_an_error_with_its_position() {
        let error = check("syntax = \"proto3\";\nmessage {").unwrap_err();
        assert!(error.contains('2') || error.contains("line"), "{error}");
    }

    #[test]
    fn configmap_holds_the_proto_as_data() {
        let yaml = configmap("protobuf-schemas", Some("prod"));
        let docs = yaml_rust2::YamlLoader::load_from_str(&yaml).unwrap();
        let doc = &docs[0];
        assert_eq!(doc["kind"].as_str(), Some("ConfigMap"));
        assert_eq!(doc["metadata"]["name"].as_str(), Some("protobuf-schemas"));
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some("prod"));
        assert_eq!(
            doc["data"][PROTO_FILE_NAME].as_str(),
            Some(USER_EVENT_PROTO)
        );
    }
}
