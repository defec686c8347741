//! Request bodies read from a parsed JSON value as serde_json would, with one difference: a
//! struct is built only from a JSON object. serde also builds a struct from an array, its
//! fields in order, so `"postings": [["cash", "sales", "100"]]` would pass for
//! `[{"debit": "cash", "credit": "sales", "amount": "100"}]` and a client's mistake would move
//! money by field order. The body's top level was refused as an array before; this refuses it
//! at every depth of structs, options, sequences and maps.
//!
//! Not covered, as no request body has them (a new one should keep it so, or extend this):
//! the contents of enum variants, and what serde buffers before deciding (untagged or tagged
//! enums, flattened fields), are read as serde_json reads them, arrays included; map keys
//! are read as plain strings, so a map keyed by numbers would be refused.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

/// `T` from `value`, refusing an array wherever `T` (or anything inside it) expects a struct.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Strict(value))
}

struct Strict(Value);

/// Primitives read exactly as `serde_json::Value` reads them.
macro_rules! as_value {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(fields) => visit_object(fields, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            // Named by its fields, which the client knows, not by the Rust type's name.
            Value::Array(_) => Err(de::Error::custom(format!(
                "an array where an object is expected (with the fields {})",
                fields.join(", ")
            ))),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    as_value! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let len = items.len();
    let mut seq = StrictSeq(items.into_iter());
    let value = visitor.visit_seq(&mut seq)?;
    if seq.0.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    fields: Map<String, Value>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let len = fields.len();
    let mut map = StrictMap {
        fields: fields.into_iter(),
        value: None,
    };
    let value = visitor.visit_map(&mut map)?;
    if map.fields.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

struct StrictSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Strict(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct StrictMap {
    fields: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Strict(value)),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::from_value;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Posting {
        debit: String,
        credit: String,
        amount: String,
        memo: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        postings: Vec<Posting>,
        first: Option<Posting>,
        tags: Vec<String>,
        pair: (i64, i64),
    }

    fn body() -> serde_json::Value {
        json!({
            "postings": [{"debit": "cash", "credit": "sales", "amount": "100", "memo": null}],
            "first": {"debit": "a", "credit": "b", "amount": "1", "memo": "x"},
            "tags": ["x", "y"],
            "pair": [1, 2],
        })
    }

    #[test]
    fn objects_arrays_and_scalars_read_as_serde_json_reads_them() {
        let expected: Body = serde_json::from_value(body()).unwrap();
        assert_eq!(from_value::<Body>(body()).unwrap(), expected);
        assert_eq!(expected.pair, (1, 2));
    }

    #[test]
    fn a_struct_given_as_an_array_is_refused_at_any_depth() {
        let mut nested = body();
        nested["postings"] = json!([["cash", "sales", "100", null]]);
        assert!(serde_json::from_value::<Body>(nested.clone()).is_ok());
        let refused = from_value::<Body>(nested).unwrap_err();
        assert!(refused.is_data(), "{refused}");
        assert_eq!(
            refused.to_string(),
            "an array where an object is expected (with the fields debit, credit, amount, memo)"
        );

        let mut optional = body();
        optional["first"] = json!(["a", "b", "1", null]);
        assert!(from_value::<Body>(optional).is_err());

        let top = json!([[], null, [], [1, 2]]);
        assert!(from_value::<Body>(top).is_err());
    }

    #[test]
    fn unknown_and_missing_fields_are_still_refused() {
        let mut unknown = body();
        unknown["postings"][0]["extra"] = json!(1);
        assert!(from_value::<Body>(unknown).is_err());
        let mut missing = body();
        missing["first"].as_object_mut().unwrap().remove("amount");
        assert!(from_value::<Body>(missing).is_err());
    }
}
