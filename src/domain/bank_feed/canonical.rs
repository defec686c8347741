//! Re-serializing parsed JSON the way the providers' signers print it, for the schemes (payOS,
//! Casso v2) that sign a canonical form rather than the raw bytes.
//!
//! Both providers' reference code is JavaScript (`JSON.stringify`, template strings), so the
//! default rendering here is JavaScript's: numbers as JavaScript prints them, strings with only
//! `"`, `\` and control characters escaped, object keys sorted in JavaScript's order.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Which characters a signer escapes inside JSON strings beyond the mandatory ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Escaping {
    /// Everything outside ASCII as `\uXXXX` (UTF-16 units, lowercase hex).
    non_ascii: bool,
    /// `/` as `\/`.
    solidus: bool,
}

/// `JSON.stringify` (Node.js) and Jackson (Java): nothing extra.
pub(super) const ESCAPE_LIKE_JAVASCRIPT: Escaping = Escaping {
    non_ascii: false,
    solidus: false,
};
/// Python's `json.dumps` default (`ensure_ascii=True`).
pub(super) const ESCAPE_LIKE_PYTHON: Escaping = Escaping {
    non_ascii: true,
    solidus: false,
};
/// PHP's `json_encode` default.
pub(super) const ESCAPE_LIKE_PHP: Escaping = Escaping {
    non_ascii: true,
    solidus: true,
};

/// JavaScript's `Array.prototype.sort` order for strings: by UTF-16 code units. It differs from
/// Rust's byte order only for characters above U+FFFF, but the signers sort this way.
pub(super) fn javascript_key_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The keys of `object` in JavaScript sort order.
pub(super) fn sorted_keys(object: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort_by(|a, b| javascript_key_order(a, b));
    keys
}

/// `value` as compact JSON with every object's keys sorted, at every depth.
pub(super) fn sorted_json(value: &Value, escaping: Escaping) -> String {
    let mut out = String::new();
    write_sorted_json(value, escaping, &mut out);
    out
}

fn write_sorted_json(value: &Value, escaping: Escaping, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&javascript_number(number)),
        Value::String(text) => write_json_string(text, escaping, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_sorted_json(item, escaping, out);
            }
            out.push(']');
        }
        Value::Object(object) => {
            out.push('{');
            for (index, key) in sorted_keys(object).into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_json_string(key, escaping, out);
                out.push(':');
                write_sorted_json(&object[key.as_str()], escaping, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(text: &str, escaping: Escaping, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if escaping.solidus => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => push_unicode_escape(c as u16, out),
            c if escaping.non_ascii && !c.is_ascii() => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    push_unicode_escape(*unit, out);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_unicode_escape(unit: u16, out: &mut String) {
    out.push_str(&format!("\\u{unit:04x}"));
}

/// A JSON number as JavaScript prints it (`String(n)`, `JSON.stringify(n)`): integers as
/// digits, and a double with no fractional part without one (`3000.0` → `3000`). Other doubles
/// use Rust's shortest round-trip form, which is JavaScript's too between 1e-6 and 1e21, the
/// only range a money or id field can take.
pub(super) fn javascript_number(number: &Number) -> String {
    match number.as_f64() {
        Some(double) if number.is_f64() => {
            if double.fract() == 0.0 && double.abs() < 1e21 {
                // `+ 0.0` turns -0 into 0, which is how JavaScript prints it.
                format!("{:.0}", double + 0.0)
            } else {
                double.to_string()
            }
        }
        _ => number.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_sorted_at_every_depth_and_compact() {
        let value = json!({"b": 1, "a": {"d": [3, {"z": null, "y": true}], "c": "x"}});
        assert_eq!(
            sorted_json(&value, ESCAPE_LIKE_JAVASCRIPT),
            r#"{"a":{"c":"x","d":[3,{"y":true,"z":null}]},"b":1}"#
        );
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases = [
            ("3000", "3000"),
            ("-599000", "-599000"),
            ("3000.0", "3000"),
            ("-0.0", "0"),
            ("1e3", "1000"),
            ("12.5", "12.5"),
            ("0.1", "0.1"),
            ("18446744073709551615", "18446744073709551615"),
        ];
        for (json_text, printed) in cases {
            let number: Number = serde_json::from_str(json_text).expect("a number");
            assert_eq!(javascript_number(&number), printed, "{json_text}");
        }
    }

    #[test]
    fn strings_escape_per_signer() {
        let value = json!("Nguyễn \"A\"/B\\\n\u{1}😀");
        assert_eq!(
            sorted_json(&value, ESCAPE_LIKE_JAVASCRIPT),
            "\"Nguyễn \\\"A\\\"/B\\\\\\n\\u0001😀\""
        );
        assert_eq!(
            sorted_json(&value, ESCAPE_LIKE_PYTHON),
            "\"Nguy\\u1ec5n \\\"A\\\"/B\\\\\\n\\u0001\\ud83d\\ude00\""
        );
        assert_eq!(
            sorted_json(&value, ESCAPE_LIKE_PHP),
            "\"Nguy\\u1ec5n \\\"A\\\"\\/B\\\\\\n\\u0001\\ud83d\\ude00\""
        );
    }

    #[test]
    fn javascript_output_matches_serde_json_for_plain_values() {
        // serde_json escapes exactly what JSON.stringify escapes; use it as a cross-check.
        let value = json!({"k": "tab\there \u{1f} \u{7f} é / \"q\"", "n": [1, -2, true, null]});
        assert_eq!(
            sorted_json(&value, ESCAPE_LIKE_JAVASCRIPT),
            serde_json::to_string(&value).expect("serializable")
        );
    }

    #[test]
    fn keys_sort_by_utf16_units_like_javascript() {
        // U+FF61 is one UTF-16 unit (0xFF61); U+1F600 starts with the surrogate 0xD83D, so
        // JavaScript puts the emoji first although its code point is larger.
        assert_eq!(javascript_key_order("😀", "｡"), Ordering::Less);
        assert_eq!(
            javascript_key_order("amount", "accountNumber"),
            Ordering::Greater
        );
    }
}
