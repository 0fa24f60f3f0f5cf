//! Schema tools replacing the original `make validate`/`make sync`: a wire-compatibility check of a proposed `.proto`, and the ConfigMap that carries the schema.
//! Fed the compiled-in proto/user_event.proto and a proposed version by the `schema` command; feeds it findings and YAML to print, with neither protoc nor kubectl.

use std::fmt;

use protox::Compiler;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use protox::prost_reflect::{
    EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
};

/// The schema's file name: the key it has in the ConfigMap and the name errors point at.
pub const PROTO_FILE_NAME: &str = "user_event.proto";

/// The schema this binary was compiled with (build.rs compiles the same file).
pub const USER_EVENT_PROTO: &str = include_str!("../proto/user_event.proto");

/// Name of the ConfigMap the original `make sync` wrote.
pub const CONFIGMAP_NAME: &str = "protobuf-schemas";

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
/// kubectl's YAML writer (sigs.k8s.io/yaml, a go-yaml v2 fork) picks each string's style; this
/// ports its rules: a file becomes a `|` literal block (with `|-`, `|+` or `|2` as needed), or
/// a double-quoted string folded at 80 columns when a line ends in a space or the text holds
/// tabs, control characters or characters beyond U+FFFF; names that YAML would read as
/// another type (`123`, `yes`, `1e3`) are quoted. The outputs were compared with kubectl
/// 1.33's. One difference is knowingly left: kubectl turns U+0085 (NEL) in a file into a space,
/// which this does not copy.
pub fn configmap(name: &str, namespace: Option<&str>) -> String {
    configmap_yaml(name, namespace, &[(PROTO_FILE_NAME, USER_EVENT_PROTO)])
}

/// `configmap` for any set of `(file name, content)` pairs; kubectl sorts keys.
fn configmap_yaml(name: &str, namespace: Option<&str>, files: &[(&str, &str)]) -> String {
    let mut files = files.to_vec();
    files.sort();
    let mut yaml = YamlWriter::new();
    yaml.entry(0, "apiVersion", Some("v1"));
    if !files.is_empty() {
        yaml.entry(0, "data", None);
        for (file, content) in files {
            yaml.entry(2, file, Some(content));
        }
    }
    yaml.entry(0, "kind", Some("ConfigMap"));
    yaml.entry(0, "metadata", None);
    yaml.entry(2, "name", Some(name));
    if let Some(namespace) = namespace {
        yaml.entry(2, "namespace", Some(namespace));
    }
    yaml.finish()
}

/// A port of the parts of go-yaml v2's emitter (emitterc.go, encode.go, resolve.go) that
/// kubectl's output of a ConfigMap goes through: block mappings of string keys and values.
struct YamlWriter {
    out: String,
    /// Column of the next character, in characters.
    column: usize,
    /// The last thing written was whitespace (or nothing), so no separating space is needed.
    whitespace: bool,
    /// Only indentation has been written on the current line.
    indention: bool,
}

/// go-yaml's preferred line width, past which quoted and plain scalars fold at a space.
const YAML_BEST_WIDTH: usize = 80;

/// go-yaml's indentation step, also the indentation indicator of `|2` blocks.
const YAML_BEST_INDENT: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

impl YamlWriter {
    fn new() -> Self {
        YamlWriter {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
        }
    }

    fn finish(mut self) -> String {
        if self.column > 0 {
            self.put_break();
        }
        self.out
    }

    /// `key:` at `indent`, followed by the scalar `value`, or by nothing when a nested mapping
    /// follows.
    fn entry(&mut self, indent: usize, key: &str, value: Option<&str>) {
        self.write_indent(indent);
        self.scalar(key, indent, true);
        self.write_indicator(":", false, false, false);
        if let Some(value) = value {
            self.scalar(value, indent + YAML_BEST_INDENT, false);
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// Writes a string scalar in the style go-yaml would pick. `indent` is the indentation of
    /// continuation lines; `simple_key` is true for mapping keys.
    fn scalar(&mut self, value: &str, indent: usize, simple_key: bool) {
        match choose_style(value, simple_key) {
            ScalarStyle::Plain => self.write_plain(value, !simple_key, indent),
            ScalarStyle::SingleQuoted => self.write_single_quoted(value, !simple_key, indent),
            ScalarStyle::DoubleQuoted => self.write_double_quoted(value, !simple_key, indent),
            ScalarStyle::Literal => self.write_literal(value, indent),
        }
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool, indent: usize) {
        if !self.whitespace {
            self.put(' ');
        }
        let mut spaces = false;
        for (i, c) in value.char_indices() {
            if c == ' ' {
                let next_is_space = value[i + 1..].starts_with(' ');
                if allow_breaks && !spaces && self.column > YAML_BEST_WIDTH && !next_is_space {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                // Plain scalars never hold line breaks: those strings get other styles.
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &str, allow_breaks: bool, indent: usize) {
        self.write_indicator("'", true, false, false);
        let mut spaces = false;
        for (i, c) in value.char_indices() {
            if c == ' ' {
                let next_is_space = value[i + 1..].starts_with(' ');
                if allow_breaks
                    && !spaces
                    && self.column > YAML_BEST_WIDTH
                    && i > 0
                    && i < value.len() - 1
                    && !next_is_space
                {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, value: &str, allow_breaks: bool, indent: usize) {
        self.write_indicator("\"", true, false, false);
        let mut spaces = false;
        for (i, c) in value.char_indices() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let code = u32::from(c);
                        let escaped = if code <= 0xff {
                            format!("x{code:02X}")
                        } else if code <= 0xffff {
                            format!("u{code:04X}")
                        } else {
                            format!("U{code:08X}")
                        };
                        for e in escaped.chars() {
                            self.put(e);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > YAML_BEST_WIDTH
                    && i > 0
                    && i < value.len() - 1
                {
                    self.write_indent(indent);
                    if value[i + 1..].starts_with(' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str, indent: usize) {
        self.write_indicator("|", true, false, false);
        if value.starts_with([' ', '\n']) {
            self.write_indicator(&YAML_BEST_INDENT.to_string(), false, false, false);
        }
        // Chomping: `-` without a final line break, `+` when more than one ends the text.
        let mut from_end = value.chars().rev();
        match (from_end.next(), from_end.next()) {
            (Some(last), None) if is_break(last) => self.write_indicator("+", false, false, false),
            (Some(last), Some(before)) if is_break(last) && is_break(before) => {
                self.write_indicator("+", false, false, false)
            }
            (Some(last), _) if is_break(last) => {}
            _ => self.write_indicator("-", false, false, false),
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in value.chars() {
            if is_break(c) {
                // go-yaml's write_break: `\n` is a newline; U+2028 and U+2029 are copied as
                // they are but still start a new line. (\r and U+0085 never get here: they are
                // not printable, or kubectl has already turned U+0085 into a space.)
                if c == '\n' {
                    self.put_break();
                } else {
                    self.out.push(c);
                    self.column = 0;
                }
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// go-yaml's `is_printable`: characters it writes as they are. Tabs, carriage returns, other
/// controls, U+FEFF, U+FFFE/U+FFFF and everything beyond U+FFFF are not.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// go-yaml's `is_break`: the line breaks of YAML 1.1.
fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// What go-yaml's `yaml_emitter_analyze_scalar` allows for a value.
struct Allowed {
    block_plain: bool,
    single_quoted: bool,
    block: bool,
    multiline: bool,
}

fn analyze(value: &str) -> Allowed {
    if value.is_empty() {
        return Allowed {
            block_plain: true,
            single_quoted: true,
            block: false,
            multiline: false,
        };
    }
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let mut line_breaks = false;
    let mut special_characters = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let chars: Vec<char> = value.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_whitespace = matches!(next, None | Some(' ' | '\t'));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special_characters = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t' | '\0') || is_break(c);
    }
    let mut allowed = Allowed {
        block_plain: true,
        single_quoted: true,
        block: true,
        multiline: line_breaks,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        allowed.block_plain = false;
    }
    if trailing_space {
        allowed.block = false;
    }
    if break_space {
        allowed.block_plain = false;
        allowed.single_quoted = false;
    }
    if space_break || special_characters {
        allowed.block_plain = false;
        allowed.single_quoted = false;
        allowed.block = false;
    }
    if line_breaks || block_indicators {
        allowed.block_plain = false;
    }
    allowed
}

/// go-yaml's choice for a string: encode.go's `stringv` asks for a literal block when the
/// string has a line break, plain when it would read back as a string, double quotes
/// otherwise; the emitter's `select_scalar_style` then falls back as the analysis demands.
fn choose_style(value: &str, simple_key: bool) -> ScalarStyle {
    let allowed = analyze(value);
    let mut style = if value.contains('\n') {
        ScalarStyle::Literal
    } else if reads_back_as_string(value) {
        ScalarStyle::Plain
    } else {
        ScalarStyle::DoubleQuoted
    };
    if simple_key && allowed.multiline {
        style = ScalarStyle::DoubleQuoted;
    }
    if style == ScalarStyle::Plain && (!allowed.block_plain || (value.is_empty() && simple_key)) {
        style = ScalarStyle::SingleQuoted;
    }
    if style == ScalarStyle::SingleQuoted && !allowed.single_quoted {
        style = ScalarStyle::DoubleQuoted;
    }
    if style == ScalarStyle::Literal && (!allowed.block || simple_key) {
        style = ScalarStyle::DoubleQuoted;
    }
    style
}

/// Whether go-yaml (YAML 1.1 rules, resolve.go) reads `value` unquoted as a string rather
/// than a bool, null, number or timestamp, and it is no base-60 float.
fn reads_back_as_string(value: &str) -> bool {
    const SPECIAL: [&str; 39] = [
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if SPECIAL.contains(&value) || is_base60_float(value) {
        return false;
    }
    match value.as_bytes()[0] {
        b'.' => !is_decimal_float(value),
        b'+' | b'-' | b'0'..=b'9' => {
            let plain = value.replace('_', "");
            !(is_timestamp(value) || is_go_int(&plain) || is_decimal_float(&plain))
        }
        _ => true,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` with a finite value (Go's
/// ParseFloat rejects overflow).
fn is_decimal_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax, of any size: `0x`, `0o`, `0b` prefixes, a
/// leading `0` for octal, an optional sign.
fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let all = |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c.is_digit(radix));
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        all(hex, 16)
    } else if let Some(octal) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        all(octal, 8)
    } else if let Some(binary) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        all(binary, 2)
    } else if let Some(octal) = body.strip_prefix('0') {
        octal.is_empty() || all(octal, 8)
    } else {
        all(body, 10)
    }
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, fraction) = match body.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (body, None),
    };
    let mut groups = main.split(':');
    let first = groups.next().unwrap_or("");
    let first_ok = first.starts_with(|c: char| c.is_ascii_digit())
        && first.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mut sexagesimal = 0;
    let rest_ok = groups.all(|group| {
        sexagesimal += 1;
        let b = group.as_bytes();
        match b {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        }
    });
    let fraction_ok = fraction.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit() || b == b'_'));
    first_ok && sexagesimal > 0 && rest_ok && fraction_ok
}

/// The timestamps go-yaml resolves: `YYYY-M-D`, optionally followed by `T`/`t` and
/// `H:M:S[.fraction]` with a `Z` or `±hh:mm` zone, or by a space and `H:M:S[.fraction]`.
fn is_timestamp(s: &str) -> bool {
    fn number(s: &str, min_len: usize, max_len: usize) -> Option<(u32, &str)> {
        let len = s.bytes().take_while(u8::is_ascii_digit).count();
        if len < min_len || len > max_len {
            return None;
        }
        Some((s[..len].parse().ok()?, &s[len..]))
    }
    fn date(s: &str) -> Option<&str> {
        let (year, s) = number(s, 4, 4)?;
        let (month, s) = number(s.strip_prefix('-')?, 1, 2)?;
        let (day, s) = number(s.strip_prefix('-')?, 1, 2)?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days).contains(&day).then_some(s)
    }
    fn time(s: &str) -> Option<&str> {
        let (hour, s) = number(s, 1, 2)?;
        let (minute, s) = number(s.strip_prefix(':')?, 1, 2)?;
        let (second, mut s) = number(s.strip_prefix(':')?, 1, 2)?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        if let Some(fraction) = s.strip_prefix('.') {
            let (_, rest) = number(fraction, 1, 9)?;
            s = rest;
        }
        Some(s)
    }
    fn zone(s: &str) -> bool {
        if s == "Z" {
            return true;
        }
        let Some(offset) = s.strip_prefix(['+', '-']) else {
            return false;
        };
        let b = offset.as_bytes();
        b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
    }
    let Some(rest) = date(s) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    if let Some(rest) = rest.strip_prefix(['T', 't']) {
        return time(rest).is_some_and(zone);
    }
    rest.strip_prefix(' ')
        .and_then(time)
        .is_some_and(str::is_empty)
}

#[cfg(test)]
mod tests {
    use yaml_rust2::YamlLoader;

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
        assert_eq!(configmap(CONFIGMAP_NAME, None), expected_configmap(None));
        assert_eq!(
            configmap(CONFIGMAP_NAME, Some("streaming")),
            expected_configmap(Some("streaming"))
        );
    }

    #[test]
    fn configmap_parses_as_yaml_holding_the_schema_and_name() {
        let text = configmap("protobuf-schemas", Some("prod"));
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

        let doc = &YamlLoader::load_from_str(&configmap("other", None)).unwrap()[0];
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

    /// Outputs of `kubectl create configmap x --from-file=<dir> --dry-run=client -o yaml`
    /// (kubectl v1.33.1), without the `creationTimestamp: null` line kubectl 1.34 dropped.
    #[test]
    fn configmap_picks_the_string_styles_kubectl_picks() {
        let files = [
            ("a.txt", "  leading\nline\n"),
            ("b.txt", "no newline at end\nsecond"),
            ("c.txt", "trailing blank lines\n\n\n"),
            ("d.txt", "trailing space \nx\n"),
            ("e.txt", "tab\there\n"),
            ("f.txt", "single line"),
            ("g.txt", "emoji \u{1f980}\nx\n"),
            ("h.txt", "ünïcödé\nx\n"),
            ("i.txt", "\nstarts with newline\n"),
            ("k.txt", "ends with space\nx \n"),
            ("l.txt", "nbsp\u{a0}x\n"),
            ("n.txt", "cr\rx\n"),
            ("o.txt", "inner  \n\nend\n"),
        ];
        let expected = "apiVersion: v1
data:
  a.txt: |2
      leading
    line
  b.txt: |-
    no newline at end
    second
  c.txt: |+
    trailing blank lines


  d.txt: \"trailing space \\nx\\n\"
  e.txt: \"tab\\there\\n\"
  f.txt: single line
  g.txt: \"emoji \\U0001F980\\nx\\n\"
  h.txt: |
    ünïcödé
    x
  i.txt: |2

    starts with newline
  k.txt: \"ends with space\\nx \\n\"
  l.txt: |
    nbsp\u{a0}x
  n.txt: \"cr\\rx\\n\"
  o.txt: \"inner  \\n\\nend\\n\"
kind: ConfigMap
metadata:
  name: x
";
        assert_eq!(configmap_yaml("x", None, &files), expected);
    }

    /// kubectl v1.33.1's `metadata.name` line for each name.
    #[test]
    fn configmap_quotes_names_yaml_would_read_as_other_types() {
        let cases = [
            ("protobuf-schemas", "protobuf-schemas"),
            ("a.b", "a.b"),
            ("2024-02-30", "2024-02-30"),
            ("123", "\"123\""),
            ("yes", "\"yes\""),
            ("on", "\"on\""),
            ("null", "\"null\""),
            ("y", "\"y\""),
            ("n", "\"n\""),
            ("true", "\"true\""),
            ("1e3", "\"1e3\""),
            ("1.5", "\"1.5\""),
            (".5", "\".5\""),
            ("1.", "\"1.\""),
            (".inf", "\".inf\""),
            ("2024-01-02", "\"2024-01-02\""),
            ("0x1f", "\"0x1f\""),
            ("0o17", "\"0o17\""),
            ("0b101", "\"0b101\""),
            ("007", "\"007\""),
            ("09", "\"09\""),
            ("1_000", "\"1_000\""),
            ("-", "'-'"),
            ("...", "'...'"),
        ];
        for (name, printed) in cases {
            let text = configmap(name, None);
            let line = text.lines().find(|l| l.starts_with("  name: ")).unwrap();
            assert_eq!(line, format!("  name: {printed}"), "name {name:?}");
        }
    }
}
