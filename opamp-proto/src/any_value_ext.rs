//! Constructors, accessors and `From` impls for [`AnyValue`] and [`KeyValue`].

use bytes::Bytes;

use crate::any_value::Value;
use crate::{AnyValue, ArrayValue, KeyValue, KeyValueList};

impl AnyValue {
    /// The null value (no variant set).
    pub const fn null() -> Self {
        Self { value: None }
    }

    /// A string value.
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            value: Some(Value::StringValue(value.into())),
        }
    }

    /// A boolean value.
    pub const fn bool(value: bool) -> Self {
        Self {
            value: Some(Value::BoolValue(value)),
        }
    }

    /// An integer value.
    pub const fn int(value: i64) -> Self {
        Self {
            value: Some(Value::IntValue(value)),
        }
    }

    /// A floating-point value.
    pub const fn double(value: f64) -> Self {
        Self {
            value: Some(Value::DoubleValue(value)),
        }
    }

    /// A bytes value.
    pub fn bytes(value: impl Into<Bytes>) -> Self {
        Self {
            value: Some(Value::BytesValue(value.into())),
        }
    }

    /// A list value.
    pub fn array(values: impl IntoIterator<Item = AnyValue>) -> Self {
        Self {
            value: Some(Value::ArrayValue(ArrayValue {
                values: values.into_iter().collect(),
            })),
        }
    }

    /// A key/value list value.
    pub fn kvlist(values: impl IntoIterator<Item = KeyValue>) -> Self {
        Self {
            value: Some(Value::KvlistValue(KeyValueList {
                values: values.into_iter().collect(),
            })),
        }
    }

    /// True if no variant is set.
    pub const fn is_null(&self) -> bool {
        self.value.is_none()
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean value.
    pub const fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Some(Value::BoolValue(b)) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub const fn as_i64(&self) -> Option<i64> {
        match &self.value {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is a floating-point value.
    pub const fn as_f64(&self) -> Option<f64> {
        match &self.value {
            Some(Value::DoubleValue(d)) => Some(*d),
            _ => None,
        }
    }

    /// The bytes, if this is a bytes value.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.value {
            Some(Value::BytesValue(b)) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a list value.
    pub fn as_array(&self) -> Option<&[AnyValue]> {
        match &self.value {
            Some(Value::ArrayValue(a)) => Some(&a.values),
            _ => None,
        }
    }

    /// The pairs, if this is a key/value list value.
    pub fn as_kvlist(&self) -> Option<&[KeyValue]> {
        match &self.value {
            Some(Value::KvlistValue(l)) => Some(&l.values),
            _ => None,
        }
    }
}

impl From<&str> for AnyValue {
    fn from(value: &str) -> Self {
        Self::string(value)
    }
}

impl From<String> for AnyValue {
    fn from(value: String) -> Self {
        Self::string(value)
    }
}

impl From<&String> for AnyValue {
    fn from(value: &String) -> Self {
        Self::string(value.as_str())
    }
}

impl From<bool> for AnyValue {
    fn from(value: bool) -> Self {
        Self::bool(value)
    }
}

impl From<i64> for AnyValue {
    fn from(value: i64) -> Self {
        Self::int(value)
    }
}

impl From<i32> for AnyValue {
    fn from(value: i32) -> Self {
        Self::int(i64::from(value))
    }
}

impl From<u32> for AnyValue {
    fn from(value: u32) -> Self {
        Self::int(i64::from(value))
    }
}

impl From<f64> for AnyValue {
    fn from(value: f64) -> Self {
        Self::double(value)
    }
}

impl From<Bytes> for AnyValue {
    fn from(value: Bytes) -> Self {
        Self::bytes(value)
    }
}

impl From<Vec<u8>> for AnyValue {
    fn from(value: Vec<u8>) -> Self {
        Self::bytes(value)
    }
}

impl From<&[u8]> for AnyValue {
    fn from(value: &[u8]) -> Self {
        Self::bytes(Bytes::copy_from_slice(value))
    }
}

impl From<Vec<AnyValue>> for AnyValue {
    fn from(values: Vec<AnyValue>) -> Self {
        Self {
            value: Some(Value::ArrayValue(ArrayValue { values })),
        }
    }
}

impl From<Vec<KeyValue>> for AnyValue {
    fn from(values: Vec<KeyValue>) -> Self {
        Self {
            value: Some(Value::KvlistValue(KeyValueList { values })),
        }
    }
}

impl From<Value> for AnyValue {
    fn from(value: Value) -> Self {
        Self { value: Some(value) }
    }
}

impl KeyValue {
    /// A pair of `key` and `value`, e.g. `KeyValue::new("service.name", "x")`.
    ///
    /// ```
    /// use opamp_proto::KeyValue;
    ///
    /// let kv = KeyValue::new("service.name", "io.example.agent");
    /// assert_eq!(kv.key, "service.name");
    /// assert_eq!(kv.as_str(), Some("io.example.agent"));
    /// assert_eq!(KeyValue::new("pid", 42).as_i64(), Some(42));
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<AnyValue>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        self.value.as_ref().and_then(AnyValue::as_str)
    }

    /// The value as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        self.value.as_ref().and_then(AnyValue::as_i64)
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        self.value.as_ref().and_then(AnyValue::as_bool)
    }

    /// The value as a float, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        self.value.as_ref().and_then(AnyValue::as_f64)
    }
}

impl<K: Into<String>, V: Into<AnyValue>> From<(K, V)> for KeyValue {
    fn from((key, value): (K, V)) -> Self {
        Self::new(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_impls_pick_the_right_variant() {
        assert_eq!(AnyValue::from("a").as_str(), Some("a"));
        assert_eq!(AnyValue::from(String::from("b")).as_str(), Some("b"));
        assert_eq!(AnyValue::from(true).as_bool(), Some(true));
        assert_eq!(AnyValue::from(-5i64).as_i64(), Some(-5));
        assert_eq!(AnyValue::from(7i32).as_i64(), Some(7));
        assert_eq!(AnyValue::from(u32::MAX).as_i64(), Some(i64::from(u32::MAX)));
        assert_eq!(AnyValue::from(1.5f64).as_f64(), Some(1.5));
        assert_eq!(
            AnyValue::from(vec![1u8, 2]).as_bytes().map(|b| b.as_ref()),
            Some(&[1u8, 2][..])
        );
        assert_eq!(
            AnyValue::from(Bytes::from_static(b"x")).as_bytes(),
            Some(&Bytes::from_static(b"x"))
        );
        assert!(AnyValue::null().is_null());
        assert!(AnyValue::from("a").as_i64().is_none());
    }

    #[test]
    fn nested_values() {
        let arr = AnyValue::array([AnyValue::from(1i64), AnyValue::from("x")]);
        assert_eq!(arr.as_array().map(<[AnyValue]>::len), Some(2));
        let kv = AnyValue::kvlist([KeyValue::new("a", 1i64)]);
        assert_eq!(kv.as_kvlist().and_then(|l| l[0].as_i64()), Some(1));
        assert_eq!(
            AnyValue::from(vec![KeyValue::new("k", "v")]),
            AnyValue::kvlist([KeyValue::from(("k", "v"))])
        );
    }
}
