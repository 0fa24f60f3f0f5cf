//! `schema check`: compiles a proposed user_event.proto with protox and lists the changes
//! that matter on the wire. Fed the proposed text by the `schema` command; compares it
//! with the compiled-in schema ([`super::USER_EVENT_PROTO`]) and feeds back findings.

use std::fmt;

use protox::Compiler;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use protox::prost_reflect::{
    EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
};

use super::{PROTO_FILE_NAME, USER_EVENT_PROTO};

/// How bad a difference between the current and a proposed schema is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Data written with one schema is misread or lost by readers of the other.
    Breaking,
    /// The binary wire format is unchanged, but something else (JSON, generated code) changes.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Breaking => "breaking",
            Severity::Warning => "warning",
        })
    }
}

/// One difference between the compiled-in schema and a proposed one that matters to readers
/// or writers of `UserEvent`s on the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    pub kind: Severity,
    /// A sentence naming the message or enum, the field or value, its number and the types,
    /// e.g. `UserEvent.user_id (field 3): type changed from string to int64`.
    pub what: String,
}

impl fmt::Display for Incompatibility {
    /// `breaking: <what>` or `warning: <what>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.what)
    }
}

/// Compiles `proposed_source` as a new version of user_event.proto and lists how it differs
/// from the compiled-in schema in ways that matter on the wire; an empty list means every
/// consumer and producer of either version keeps working.
///
/// Breaking: a message or enum removed; a field number gone without `reserved` for its number
/// or name; a field whose type changed (`string` to `int64`, scalar to message, another enum,
/// singular to `repeated` or `map`); a field moved to another number; an enum value whose
/// number changed or that is gone without reservation; a reserved number or name reused; the
/// package changed. Warning: a field or enum value renamed at the same number (binary is
/// unchanged, but JSON carries names). New fields, messages and values are compatible.
///
/// Returns `Err` with the position (`line L, column C: ...`) when the text does not compile.
/// `import`s of the well-known `google/protobuf/*.proto` types work; other imports do not.
pub fn check(proposed_source: &str) -> Result<Vec<Incompatibility>, String> {
    let current = compile(USER_EVENT_PROTO)
        .map_err(|e| format!("the compiled-in schema does not compile: {e}"))?;
    let proposed = compile(proposed_source)?;
    Ok(compare(&current, &proposed))
}

/// Serves one in-memory source as user_event.proto, so checking needs no files.
struct SourceResolver(String);

impl FileResolver for SourceResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == PROTO_FILE_NAME {
            File::from_source(name, &self.0)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

fn compile(source: &str) -> Result<FileDescriptor, String> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(SourceResolver(source.to_owned()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = Compiler::with_file_resolver(resolver);
    compiler
        .open_file(PROTO_FILE_NAME)
        .map_err(describe_compile_error)?;
    compiler
        .descriptor_pool()
        .get_file_by_name(PROTO_FILE_NAME)
        .ok_or_else(|| format!("{PROTO_FILE_NAME} compiled but is missing from the output"))
}

/// protox's `Debug` form is `user_event.proto:L:C: message`; this gives
/// `line L, column C: message`, since the caller names the file it read.
fn describe_compile_error(error: protox::Error) -> String {
    let text = format!("{error:?}");
    let Some(rest) = text
        .strip_prefix(PROTO_FILE_NAME)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return text;
    };
    let mut parts = rest.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(line), Some(column), Some(message))
            if line.parse::<u32>().is_ok() && column.parse::<u32>().is_ok() =>
        {
            format!("line {line}, column {column}: {}", message.trim_start())
        }
        _ => rest.trim_start().to_string(),
    }
}

/// Names of `old`'s types relative to its package, so a package rename is reported once
/// rather than as every message removed.
fn relative<'a>(full_name: &'a str, package: &str) -> &'a str {
    if package.is_empty() {
        return full_name;
    }
    full_name
        .strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(full_name)
}

fn qualified(package: &str, relative_name: &str) -> String {
    if package.is_empty() {
        relative_name.to_string()
    } else {
        format!("{package}.{relative_name}")
    }
}

/// Every message of the file, nested ones included, map entries excluded (a map field's type
/// is compared as `map<K, V>` instead).
fn messages(file: &FileDescriptor) -> Vec<MessageDescriptor> {
    fn walk(message: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        if message.is_map_entry() {
            return;
        }
        let children: Vec<_> = message.child_messages().collect();
        out.push(message);
        for child in children {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    for message in file.messages() {
        walk(message, &mut out);
    }
    out
}

/// Every enum of the file, nested ones included.
fn enums(file: &FileDescriptor) -> Vec<EnumDescriptor> {
    let mut out: Vec<EnumDescriptor> = file.enums().collect();
    for message in messages(file) {
        out.extend(message.child_enums());
    }
    out
}

/// The type as a person writes it in a .proto: `string`, `repeated int64`, `UserEventData`,
/// `map<string, string>`, with message and enum names relative to the package.
fn type_name(field: &FieldDescriptor, package: &str) -> String {
    if let (true, Kind::Message(entry)) = (field.is_map(), field.kind()) {
        return format!(
            "map<{}, {}>",
            kind_name(&entry.map_entry_key_field().kind(), package),
            kind_name(&entry.map_entry_value_field().kind(), package)
        );
    }
    let base = kind_name(&field.kind(), package);
    if field.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}

fn kind_name(kind: &Kind, package: &str) -> String {
    let scalar = match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(message) => return relative(message.full_name(), package).to_string(),
        Kind::Enum(enumeration) => return relative(enumeration.full_name(), package).to_string(),
    };
    scalar.to_string()
}

fn message_reserves(message: &MessageDescriptor, number: u32, name: &str) -> bool {
    message
        .reserved_ranges()
        .any(|range| range.contains(&number))
        || message.reserved_names().any(|reserved| reserved == name)
}

fn enum_reserves(enumeration: &EnumDescriptor, number: i32, name: &str) -> bool {
    enumeration
        .reserved_ranges()
        .any(|range| range.contains(&number))
        || enumeration
            .reserved_names()
            .any(|reserved| reserved == name)
}

/// Collects findings in a stable order: package, then messages and their fields in
/// declaration order, then enums and their values.
struct Findings(Vec<Incompatibility>);

impl Findings {
    fn breaking(&mut self, what: String) {
        self.0.push(Incompatibility {
            kind: Severity::Breaking,
            what,
        });
    }

    fn warning(&mut self, what: String) {
        self.0.push(Incompatibility {
            kind: Severity::Warning,
            what,
        });
    }
}

fn compare(old: &FileDescriptor, new: &FileDescriptor) -> Vec<Incompatibility> {
    let mut findings = Findings(Vec::new());
    let (old_package, new_package) = (old.package_name(), new.package_name());
    if old_package != new_package {
        findings.breaking(format!(
            "package changed from `{old_package}` to `{new_package}`: every message's full name \
             changes, so readers resolving `{}` by name no longer find it",
            qualified(old_package, "UserEvent")
        ));
    }
    let pool = new.parent_pool();
    for old_message in messages(old) {
        let name = relative(old_message.full_name(), old_package);
        match pool.get_message_by_name(&qualified(new_package, name)) {
            Some(new_message) => compare_messages(
                name,
                &old_message,
                &new_message,
                (old_package, new_package),
                &mut findings,
            ),
            None => findings.breaking(format!("message {name} removed")),
        }
    }
    for old_enum in enums(old) {
        let name = relative(old_enum.full_name(), old_package);
        match pool.get_enum_by_name(&qualified(new_package, name)) {
            Some(new_enum) => compare_enums(name, &old_enum, &new_enum, &mut findings),
            None => findings.breaking(format!("enum {name} removed")),
        }
    }
    findings.0
}

fn compare_messages(
    name: &str,
    old: &MessageDescriptor,
    new: &MessageDescriptor,
    (old_package, new_package): (&str, &str),
    findings: &mut Findings,
) {
    for field in old.fields() {
        let number = field.number();
        let field_name = field.name();
        let here = format!("{name}.{field_name} (field {number})");
        let old_type = type_name(&field, old_package);
        let moved = new
            .get_field_by_name(field_name)
            .filter(|same_name| same_name.number() != number);
        if let Some(moved) = &moved {
            findings.breaking(format!(
                "{here}: field number changed from {number} to {}; readers of either version \
                 no longer find the other's value",
                moved.number()
            ));
        }
        match new.get_field(number) {
            Some(same_number) => {
                if same_number.name() != field_name {
                    findings.warning(format!(
                        "{here}: renamed to {}; the binary wire format is unchanged, but JSON \
                         uses field names, so JSON readers and writers break",
                        same_number.name()
                    ));
                }
                let new_type = type_name(&same_number, new_package);
                if new_type != old_type {
                    findings.breaking(format!(
                        "{here}: type changed from {old_type} to {new_type}"
                    ));
                }
            }
            None if moved.is_some() => {}
            None if message_reserves(new, number, field_name) => {}
            None => findings.breaking(format!(
                "{here}: {old_type} field removed without reserving it; add `reserved {number};` \
                 so the number is never reused with another meaning"
            )),
        }
    }
    for field in new.fields() {
        let (number, field_name) = (field.number(), field.name());
        if old.get_field(number).is_none() && message_reserves(old, number, "") {
            findings.breaking(format!(
                "{name}.{field_name} (field {number}): reuses field number {number}, which the \
                 current schema reserves"
            ));
        } else if old.get_field_by_name(field_name).is_none()
            && old.reserved_names().any(|reserved| reserved == field_name)
        {
            findings.breaking(format!(
                "{name}.{field_name} (field {number}): reuses the name {field_name}, which the \
                 current schema reserves"
            ));
        }
    }
}

fn compare_enums(name: &str, old: &EnumDescriptor, new: &EnumDescriptor, findings: &mut Findings) {
    for value in old.values() {
        let (number, value_name) = (value.number(), value.name());
        let here = format!("{name}.{value_name} ({number})");
        let moved = new
            .get_value_by_name(value_name)
            .filter(|same_name| same_name.number() != number);
        if let Some(moved) = &moved {
            findings.breaking(format!(
                "{here}: number changed from {number} to {}; stored and in-flight events \
                 change meaning",
                moved.number()
            ));
        }
        let same_number: Vec<_> = new.values().filter(|v| v.number() == number).collect();
        if same_number.is_empty() {
            if moved.is_none() && !enum_reserves(new, number, value_name) {
                findings.breaking(format!(
                    "{here}: value removed without reserving it; add `reserved {number};` so \
                     the number is never reused with another meaning"
                ));
            }
        } else if !same_number.iter().any(|v| v.name() == value_name) {
            findings.warning(format!(
                "{here}: renamed to {}; the binary wire format is unchanged, but JSON carries \
                 enum names, so JSON readers of the old name break",
                same_number[0].name()
            ));
        }
    }
    for value in new.values() {
        let (number, value_name) = (value.number(), value.name());
        if old.get_value(number).is_none() && enum_reserves(old, number, "") {
            findings.breaking(format!(
                "{name}.{value_name} ({number}): reuses number {number}, which the current \
                 schema reserves"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled-in schema with `from` replaced by `to`, which must occur exactly once.
    fn edited(from: &str, to: &str) -> String {
        assert_eq!(
            USER_EVENT_PROTO.matches(from).count(),
            1,
            "{from:?} must occur once in the schema"
        );
        USER_EVENT_PROTO.replace(from, to)
    }

    fn breaking(what: &str) -> Incompatibility {
        Incompatibility {
            kind: Severity::Breaking,
            what: what.to_string(),
        }
    }

    fn warning(what: &str) -> Incompatibility {
        Incompatibility {
            kind: Severity::Warning,
            what: what.to_string(),
        }
    }

    #[test]
    fn compiled_in_schema_is_compatible_with_itself() {
        assert_eq!(check(USER_EVENT_PROTO), Ok(vec![]));
    }

    #[test]
    fn adding_an_optional_field_a_message_and_an_enum_value_is_compatible() {
        let proposed = edited(
            "  UserEventData data = 5;\n}",
            "  UserEventData data = 5;\n  optional string session_id = 6;\n}\n\nmessage Extra {\n  \
             int32 x = 1;\n}",
        );
        let proposed =
            proposed.replace("USER_LOGOUT = 3;", "USER_LOGOUT = 3;\n  USER_DELETED = 4;");
        assert_eq!(check(&proposed), Ok(vec![]));
    }

    #[test]
    fn comments_and_formatting_changes_are_compatible() {
        let proposed = format!(
            "// A new header comment.\n{}",
            USER_EVENT_PROTO.replace("  ", "    ")
        );
        assert_eq!(check(&proposed), Ok(vec![]));
    }

    #[test]
    fn changing_a_field_type_is_breaking() {
        assert_eq!(
            check(&edited("string user_id = 3;", "int64 user_id = 3;")),
            Ok(vec![breaking(
                "UserEvent.user_id (field 3): type changed from string to int64"
            )])
        );
        assert_eq!(
            check(&edited(
                "int64 timestamp = 2;",
                "UserEventData timestamp = 2;"
            )),
            Ok(vec![breaking(
                "UserEvent.timestamp (field 2): type changed from int64 to UserEventData"
            )])
        );
        assert_eq!(
            check(&edited(
                "map<string, string> metadata = 3;",
                "repeated string metadata = 3;"
            )),
            Ok(vec![breaking(
                "UserEventData.metadata (field 3): type changed from map<string, string> to \
                 repeated string"
            )])
        );
        assert_eq!(
            check(&edited(
                "optional string email = 1;",
                "repeated string email = 1;"
            )),
            Ok(vec![breaking(
                "UserEventData.email (field 1): type changed from string to repeated string"
            )])
        );
    }

    #[test]
    fn changing_a_field_enum_type_is_breaking() {
        let proposed = edited("EventType event_type = 4;", "Other event_type = 4;")
            + "\nenum Other {\n  OTHER_UNKNOWN = 0;\n}\n";
        assert_eq!(
            check(&proposed),
            Ok(vec![breaking(
                "UserEvent.event_type (field 4): type changed from EventType to Other"
            )])
        );
    }

    #[test]
    fn renumbering_a_field_is_breaking() {
        assert_eq!(
            check(&edited("string user_id = 3;", "string user_id = 6;")),
            Ok(vec![breaking(
                "UserEvent.user_id (field 3): field number changed from 3 to 6; readers of \
                 either version no longer find the other's value"
            )])
        );
    }

    #[test]
    fn removing_a_field_without_reserving_it_is_breaking() {
        assert_eq!(
            check(&edited("  string user_id = 3;\n", "")),
            Ok(vec![breaking(
                "UserEvent.user_id (field 3): string field removed without reserving it; add \
                 `reserved 3;` so the number is never reused with another meaning"
            )])
        );
    }

    #[test]
    fn removing_a_field_with_its_number_or_name_reserved_is_compatible() {
        assert_eq!(
            check(&edited("  string user_id = 3;\n", "  reserved 3;\n")),
            Ok(vec![])
        );
        assert_eq!(
            check(&edited(
                "  string user_id = 3;\n",
                "  reserved 3, 6 to 8;\n"
            )),
            Ok(vec![])
        );
        assert_eq!(
            check(&edited(
                "  string user_id = 3;\n",
                "  reserved \"user_id\";\n"
            )),
            Ok(vec![])
        );
    }

    #[test]
    fn reusing_a_reserved_number_is_breaking() {
        let current = edited("  string user_id = 3;\n", "  reserved 3;\n");
        let findings = compare(
            &compile(&current).unwrap(),
            &compile(USER_EVENT_PROTO).unwrap(),
        );
        assert_eq!(
            findings,
            vec![breaking(
                "UserEvent.user_id (field 3): reuses field number 3, which the current schema \
                 reserves"
            )]
        );
    }

    #[test]
    fn renaming_a_field_is_a_warning() {
        assert_eq!(
            check(&edited("string user_id = 3;", "string account_id = 3;")),
            Ok(vec![warning(
                "UserEvent.user_id (field 3): renamed to account_id; the binary wire format is \
                 unchanged, but JSON uses field names, so JSON readers and writers break"
            )])
        );
    }

    #[test]
    fn renumbering_an_enum_value_is_breaking() {
        assert_eq!(
            check(&edited("USER_LOGOUT = 3;", "USER_LOGOUT = 4;")),
            Ok(vec![breaking(
                "EventType.USER_LOGOUT (3): number changed from 3 to 4; stored and in-flight \
                 events change meaning"
            )])
        );
    }

    #[test]
    fn removing_an_enum_value_needs_a_reservation() {
        assert_eq!(
            check(&edited("  USER_LOGOUT = 3;\n", "")),
            Ok(vec![breaking(
                "EventType.USER_LOGOUT (3): value removed without reserving it; add `reserved \
                 3;` so the number is never reused with another meaning"
            )])
        );
        assert_eq!(
            check(&edited("  USER_LOGOUT = 3;\n", "  reserved 3;\n")),
            Ok(vec![])
        );
    }

    #[test]
    fn renaming_an_enum_value_is_a_warning() {
        assert_eq!(
            check(&edited("USER_LOGOUT = 3;", "USER_SIGNED_OUT = 3;")),
            Ok(vec![warning(
                "EventType.USER_LOGOUT (3): renamed to USER_SIGNED_OUT; the binary wire format \
                 is unchanged, but JSON carries enum names, so JSON readers of the old name break"
            )])
        );
    }

    #[test]
    fn removing_a_message_is_breaking() {
        let proposed = edited("  UserEventData data = 5;\n", "");
        let proposed = proposed[..proposed.find("message UserEventData").unwrap()].to_string();
        assert_eq!(
            check(&proposed),
            Ok(vec![
                breaking(
                    "UserEvent.data (field 5): UserEventData field removed without reserving \
                     it; add `reserved 5;` so the number is never reused with another meaning"
                ),
                breaking("message UserEventData removed"),
            ])
        );
    }

    #[test]
    fn changing_the_package_is_breaking_and_reported_once() {
        assert_eq!(
            check(&edited("package events;", "package users.v2;")),
            Ok(vec![breaking(
                "package changed from `events` to `users.v2`: every message's full name \
                 changes, so readers resolving `events.UserEvent` by name no longer find it"
            )])
        );
    }

    #[test]
    fn syntax_error_is_an_error_with_line_and_column() {
        let proposed = edited("string user_id = 3;", "string user_id = ;");
        let line = USER_EVENT_PROTO
            .lines()
            .position(|l| l.contains("string user_id = 3;"))
            .unwrap()
            + 1;
        let error = check(&proposed).expect_err("must not compile");
        assert!(
            error.starts_with(&format!("line {line}, column 20: ")),
            "{error}"
        );
    }

    #[test]
    fn semantic_error_is_an_error_with_position() {
        let proposed = edited("string user_id = 3;", "Missing user_id = 3;");
        let error = check(&proposed).expect_err("must not compile");
        assert!(error.contains("Missing"), "{error}");
        assert!(error.starts_with("line "), "{error}");
    }

    #[test]
    fn well_known_type_imports_compile() {
        let proposed = edited(
            "package events;",
            "package events;\n\nimport \"google/protobuf/timestamp.proto\";",
        )
        .replace(
            "UserEventData data = 5;",
            "UserEventData data = 5;\n  google.protobuf.Timestamp received_at = 6;",
        );
        assert_eq!(check(&proposed), Ok(vec![]));
    }

    #[test]
    fn incompatibility_displays_severity_then_sentence() {
        let finding = breaking("UserEvent.user_id (field 3): type changed from string to int64");
        assert_eq!(
            finding.to_string(),
            "breaking: UserEvent.user_id (field 3): type changed from string to int64"
        );
        assert_eq!(warning("x").to_string(), "warning: x");
    }
}
