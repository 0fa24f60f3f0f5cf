//! Wraps a serde deserializer around the code pbjson-build generates, adding what the
//! proto3 JSON mapping asks of a parser and pbjson leaves out. Used by `json_lines` only.
//!
//! pbjson's generated `Deserialize` impls read the field names of every schema message,
//! enums by name or number and 64-bit integers as numbers or strings; this adapter adds:
//!
//! - `null` for any field means "not set": the field gets its default (pbjson takes
//!   `null` only for `optional` and message fields); a map value or list element stays
//!   refused as `null`, as the mapping says;
//! - a field the schema does not have is an error naming it and the known fields, or is
//!   skipped when the caller asked to ignore unknown fields (a runtime choice, where
//!   pbjson-build makes it a build-time one);
//! - the path of the field at fault (`data.metadata`), for error messages;
//! - whether the top-level object gave a (non-null) field, so that the caller can tell a
//!   missing `eventId` from an empty one.
//!
//! It costs a few calls per field and no allocation once its buffers have grown: keys are
//! copied into buffers the [`State`] keeps from line to line.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

/// What the adapter learns while one line is read; reused from line to line.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Skip fields the schema does not have instead of failing on them.
    pub ignore_unknown_fields: bool,
    /// The key being read at each nesting depth (0 = the top-level object); buffers kept
    /// between lines so reading keys does not allocate.
    keys: Vec<String>,
    /// The dotted path of the field whose value failed to read, set by the innermost
    /// level that saw the error (empty: the top-level object itself).
    pub error_path: Option<String>,
    /// The top-level keys given with a non-null value, in the order read (only the ones
    /// [`State::watch`] names are recorded).
    pub given: Vec<&'static str>,
    /// Top-level keys whose presence the caller wants to know, each with the canonical
    /// name recorded in `given`: (key as it may appear, canonical name).
    watched: &'static [(&'static str, &'static str)],
}

impl State {
    /// A state that records in `given` which of `watched` top-level keys had a value.
    pub fn new(watched: &'static [(&'static str, &'static str)]) -> Self {
        State {
            watched,
            ..State::default()
        }
    }

    /// Forgets the previous line (keeps the buffers).
    pub fn reset(&mut self) {
        self.error_path = None;
        self.given.clear();
    }

    fn key_buffer(&mut self, depth: usize) -> &mut String {
        if self.keys.len() <= depth {
            self.keys.resize_with(depth + 1, String::new);
        }
        &mut self.keys[depth]
    }

    fn path_to(&self, depth: usize) -> String {
        self.keys[..depth.min(self.keys.len())].join(".")
    }

    fn note_error(&mut self, depth: usize) {
        if self.error_path.is_none() {
            self.error_path = Some(self.path_to(depth));
        }
    }
}

/// A deserializer with the adapter's behaviour, for the value at `depth` (the number of
/// objects around it).
pub(super) struct Lenient<'s, D> {
    pub de: D,
    pub state: &'s RefCell<State>,
    pub depth: usize,
}

/// Wraps a visitor so that the maps, sequences and options it is given are wrapped too.
struct WrapVisitor<'s, V> {
    inner: V,
    state: &'s RefCell<State>,
    depth: usize,
    /// The field names of the message being read (both spellings), or None for a map.
    fields: Option<(&'static str, &'static [&'static str])>,
}

macro_rules! forward {
    ($($method:ident ( $($arg:ident : $ty:ty),* )),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.de.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, 's, D: Deserializer<'de>> Deserializer<'de> for Lenient<'s, D> {
    type Error = D::Error;

    forward! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(), deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = self.wrap(visitor, None);
        self.de.deserialize_option(wrapped)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = self.wrap(visitor, None);
        self.de.deserialize_seq(wrapped)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = self.wrap(visitor, None);
        self.de.deserialize_map(wrapped)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let wrapped = self.wrap(visitor, Some((name, fields)));
        self.de.deserialize_struct(name, fields, wrapped)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

impl<'s, D> Lenient<'s, D> {
    fn wrap<V>(
        &self,
        inner: V,
        fields: Option<(&'static str, &'static [&'static str])>,
    ) -> WrapVisitor<'s, V> {
        WrapVisitor {
            inner,
            state: self.state,
            depth: self.depth,
            fields,
        }
    }
}

macro_rules! forward_visit {
    ($($method:ident ( $ty:ty )),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
                self.inner.$method(value)
            }
        )*
    };
}

impl<'de, 's, V: Visitor<'de>> Visitor<'de> for WrapVisitor<'s, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool), visit_i64(i64), visit_i128(i128), visit_u64(u64), visit_u128(u128),
        visit_f64(f64), visit_str(&str), visit_borrowed_str(&'de str), visit_string(String),
        visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>),
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Lenient {
            de,
            state: self.state,
            depth: self.depth,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(WrapSeq {
            seq,
            state: self.state,
            depth: self.depth,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let (state, depth) = (self.state, self.depth);
        let result = self.inner.visit_map(WrapMap {
            map,
            state,
            depth,
            fields: self.fields,
        });
        if result.is_err() {
            // An error of the object itself (a duplicate field, say): name the object.
            state.borrow_mut().note_error(depth);
        }
        result
    }
}

/// The elements of a JSON array (a repeated field), each read with the adapter.
struct WrapSeq<'s, A> {
    seq: A,
    state: &'s RefCell<State>,
    depth: usize,
}

impl<'de, 's, A: SeqAccess<'de>> SeqAccess<'de> for WrapSeq<'s, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        // An element of a repeated field cannot be null: read as is, no default.
        self.seq.next_element_seed(ValueSeed {
            seed,
            state: self.state,
            depth: self.depth,
            null_is_unset: false,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

/// The entries of a JSON object: a message (with its field names) or a map field.
struct WrapMap<'s, A> {
    map: A,
    state: &'s RefCell<State>,
    depth: usize,
    fields: Option<(&'static str, &'static [&'static str])>,
}

impl<'de, 's, A: MapAccess<'de>> MapAccess<'de> for WrapMap<'s, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let capture = KeyCapture {
                state: self.state,
                depth: self.depth,
            };
            if self.map.next_key_seed(capture)?.is_none() {
                return Ok(None);
            }
            let state = self.state.borrow();
            let key = state.keys[self.depth].as_str();
            if let Some((message, fields)) = self.fields
                && !fields.contains(&key)
            {
                if state.ignore_unknown_fields {
                    drop(state);
                    self.map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let error = de::Error::custom(unknown_field(key, message, fields));
                drop(state);
                self.state.borrow_mut().note_error(self.depth);
                return Err(error);
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let result = self.map.next_value_seed(ValueSeed {
            seed,
            state: self.state,
            depth: self.depth + 1,
            // A message's field may be null (unset); a map's value may not.
            null_is_unset: self.fields.is_some(),
        });
        if result.is_err() {
            self.state.borrow_mut().note_error(self.depth + 1);
        }
        result
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// "unknown field "x": UserEvent has eventId, timestamp, ...": the lowerCamel names, which
/// the proto names (`event_id`) also match.
fn unknown_field(key: &str, message: &str, fields: &[&str]) -> String {
    let short = message.rsplit('.').next().unwrap_or(message);
    let camel: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| !f.contains('_'))
        .collect();
    let known = if camel.is_empty() { fields } else { &camel };
    format!(
        "unknown field \"{key}\": {short} has {} (or their proto names); \
         ParseOptions::ignore_unknown_fields drops fields the schema does not have",
        known.join(", ")
    )
}

/// Reads an object key into the state's buffer for its depth.
struct KeyCapture<'s> {
    state: &'s RefCell<State>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for KeyCapture<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyCapture<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        let mut state = self.state.borrow_mut();
        let buffer = state.key_buffer(self.depth);
        buffer.clear();
        buffer.push_str(key);
        Ok(())
    }
}

/// Reads one value: for a message field, `null` gives the target's default; anything
/// else is read with the adapter (and, at the top level, recorded as given).
struct ValueSeed<'s, T> {
    seed: T,
    state: &'s RefCell<State>,
    /// Depth of the value: 1 for the values of the top-level object's fields.
    depth: usize,
    /// The value is a message field's, for which `null` means unset.
    null_is_unset: bool,
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for ValueSeed<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T::Value, D::Error> {
        if self.null_is_unset {
            de.deserialize_option(self)
        } else {
            self.seed.deserialize(Lenient {
                de,
                state: self.state,
                depth: self.depth,
            })
        }
    }
}

impl<'de, T: DeserializeSeed<'de>> Visitor<'de> for ValueSeed<'_, T> {
    type Value = T::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_none<E: de::Error>(self) -> Result<T::Value, E> {
        self.seed.deserialize(Unset(PhantomData))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T::Value, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<T::Value, D::Error> {
        if self.depth == 1 {
            let mut state = self.state.borrow_mut();
            let key = state.keys.first().map(String::as_str).unwrap_or("");
            if let Some(&(_, canonical)) = state.watched.iter().find(|(k, _)| *k == key) {
                state.given.push(canonical);
            }
        }
        self.seed.deserialize(Lenient {
            de,
            state: self.state,
            depth: self.depth,
        })
    }
}

/// The default value of whatever is asked for: what a `null` field reads as.
struct Unset<E>(PhantomData<E>);

impl<'de, E: de::Error> Deserializer<'de> for Unset<E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        // Numbers and enums (pbjson reads both with deserialize_any): 0, the proto3
        // default of every number and the first value of every proto3 enum.
        visitor.visit_i64(0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_bool(false)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_f64(0.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_str("")
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        // pbjson reads bytes as a base64 string.
        visitor.visit_str("")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_str("")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_none()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<()>()))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_map(de::value::MapDeserializer::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        self.deserialize_map(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char unit_struct newtype_struct tuple
        tuple_struct enum identifier
    }
}
