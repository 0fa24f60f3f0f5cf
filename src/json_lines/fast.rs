//! The fast path of `json_lines`: a line read by the code pbjson-build generates, as is,
//! noting only which top-level keys were given. `json_lines` tries it first and falls
//! back to the lenient adapter (`lenient.rs`) whenever it fails.
//!
//! The generated code alone is stricter than the adapter, never looser: it refuses
//! unknown fields (pbjson-build's default) and `null` for a field that is not `optional`
//! or a message, which the adapter drops or reads as unset; everything else it reads as
//! the adapter does, since the adapter forwards to it. So a line it accepts is one the
//! adapter reads into the same event, and every line it refuses, the adapter decides,
//! with its error messages. Its cost is the generated code's plus a look at each
//! top-level key; nested objects are read untouched.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use crate::event::UserEvent;

/// Which of the watched top-level keys a line gave, one bit per entry of the list.
pub(super) type Given = u32;

/// Reads `line` as one `UserEvent` with the generated code; on success, also returns the
/// entries of `watched` ((key as written, canonical name), at most 32) whose key the
/// top-level object had.
///
/// A key given with `null` is not told apart from a given value: the watched fields must
/// be ones the generated code refuses `null` for (a string, a number), so that such a line
/// fails here and the adapter decides it.
pub(super) fn parse(
    line: &str,
    watched: &'static [(&'static str, &'static str)],
) -> Result<(UserEvent, Given), serde_json::Error> {
    let mut given = 0;
    let mut de = serde_json::Deserializer::from_str(line);
    let event = de::Deserializer::deserialize_map(
        &mut de,
        TopLevel {
            watched,
            given: &mut given,
        },
    )?;
    de.end()?;
    Ok((event, given))
}

/// The top-level object: handed to the generated code with its keys watched.
struct TopLevel<'g> {
    watched: &'static [(&'static str, &'static str)],
    given: &'g mut Given,
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = UserEvent;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a UserEvent object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UserEvent, A::Error> {
        UserEvent::deserialize(de::value::MapAccessDeserializer::new(Watched {
            map,
            watched: self.watched,
            given: self.given,
        }))
    }
}

/// The top-level object's entries: keys looked at on their way to the generated code,
/// values passed straight through.
struct Watched<'g, A> {
    map: A,
    watched: &'static [(&'static str, &'static str)],
    given: &'g mut Given,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Watched<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.map.next_key_seed(WatchedKey {
            seed,
            watched: self.watched,
            given: self.given,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// One top-level key: read as a string (borrowed from the line unless it has escapes),
/// noted if watched, then given to the generated code's field-name reader.
struct WatchedKey<'g, K> {
    seed: K,
    watched: &'static [(&'static str, &'static str)],
    given: &'g mut Given,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for WatchedKey<'_, K> {
    type Value = K::Value;

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<K::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for WatchedKey<'_, K> {
    type Value = K::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<K::Value, E> {
        if let Some(at) = self.watched.iter().position(|(k, _)| *k == key) {
            *self.given |= 1 << at;
        }
        self.seed.deserialize(key.into_deserializer())
    }
}
