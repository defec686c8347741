//! Reading typed fields out of a provider's JSON body, with errors that name the exact field.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Number, Value};

use super::{Direction, ParseError};
use crate::domain::money::MAX_AMOUNT_MINOR;
use crate::domain::payer::PayerAccount;

/// Vietnam time, UTC+7 all year (no daylight saving).
const VIETNAM_OFFSET_SECONDS: i32 = 7 * 3600;

/// The largest magnitude at which a JSON double still holds every integer (2^53). Beyond it a
/// sender's exact value cannot be known, so such an amount is refused rather than rounded.
const MAX_EXACT_DOUBLE: f64 = 9_007_199_254_740_992.0;

/// The payer's account from the fields `bin` and `number`, read leniently: a missing, empty,
/// non-text or malformed value gives `None`, never a refused delivery. Feeds send the BIN as
/// text or as a number.
pub(super) fn payer_account(fields: &Fields<'_>, bin: &str, number: &str) -> Option<PayerAccount> {
    let text = |name: &str| match fields.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    PayerAccount::parse(text(bin).as_deref(), text(number).as_deref())
}

/// A JSON object together with its path in the body, for error messages.
pub(super) struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    /// The body itself, which must be an object.
    pub fn root(body: &'a Value) -> Result<Self, ParseError> {
        Fields::at(body, String::new())
    }

    /// `value`, found at `path` in the body, which must be an object.
    pub fn at(value: &'a Value, path: String) -> Result<Self, ParseError> {
        match value {
            Value::Object(object) => Ok(Fields { object, path }),
            _ => Err(ParseError::InvalidField {
                field: if path.is_empty() {
                    "body".to_owned()
                } else {
                    path
                },
                problem: "must be a JSON object",
            }),
        }
    }

    /// The object under `name`.
    pub fn object(&self, name: &str) -> Result<Fields<'a>, ParseError> {
        Fields::at(self.required(name)?, self.path_of(name))
    }

    /// The value under `name`; `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    pub fn required(&self, name: &str) -> Result<&'a Value, ParseError> {
        self.get(name).ok_or_else(|| ParseError::MissingField {
            field: self.path_of(name),
        })
    }

    /// The JSON path of field `name` in this object (`data.amount`).
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// No database stores text with NUL in it; refused here rather than failing the write.
    fn nul(&self, name: &str) -> ParseError {
        self.invalid(name, "contains a NUL character")
    }

    fn invalid(&self, name: &str, problem: &'static str) -> ParseError {
        ParseError::InvalidField {
            field: self.path_of(name),
            problem,
        }
    }

    /// A string that must be present and not blank; returned trimmed.
    pub fn required_text(&self, name: &str) -> Result<String, ParseError> {
        self.optional_text(name)?
            .ok_or_else(|| ParseError::MissingField {
                field: self.path_of(name),
            })
    }

    /// A string that may be absent, `null` or blank (all read as `None`); returned trimmed.
    pub fn optional_text(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.contains('\0') => Err(self.nul(name)),
            Some(Value::String(text)) => {
                let text = text.trim();
                Ok((!text.is_empty()).then(|| text.to_owned()))
            }
            Some(_) => Err(self.invalid(name, "must be a string")),
        }
    }

    /// Free text such as a transfer memo: absent or `null` reads as empty, and it is kept as
    /// sent (not trimmed), since the matcher searches inside it.
    pub fn text_or_empty(&self, name: &str) -> Result<String, ParseError> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(Value::String(text)) if text.contains('\0') => Err(self.nul(name)),
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(self.invalid(name, "must be a string")),
        }
    }

    /// `"in"` or `"out"`, exactly.
    pub fn direction(&self, name: &str) -> Result<Direction, ParseError> {
        match self.required_text(name)?.as_str() {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            _ => Err(self.invalid(name, "must be \"in\" or \"out\"")),
        }
    }

    /// An identifier sent either as a JSON integer or as a non-blank string.
    pub fn identifier(&self, name: &str) -> Result<String, ParseError> {
        match self.required(name)? {
            Value::Number(number) if number.is_u64() || number.is_i64() => Ok(number.to_string()),
            Value::String(_) => self.required_text(name),
            _ => Err(self.invalid(name, "must be an integer or a string")),
        }
    }

    /// A transfer amount in đồng: a JSON integer greater than zero.
    pub fn positive_amount(&self, name: &str) -> Result<i64, ParseError> {
        let amount = self.whole_dong(name, self.required(name)?)?;
        if amount <= 0 {
            return Err(ParseError::AmountNotPositive {
                field: self.path_of(name),
            });
        }
        Ok(amount)
    }

    /// An amount whose sign carries meaning (Casso: negative means money out); zero is refused.
    pub fn nonzero_amount(&self, name: &str) -> Result<i64, ParseError> {
        let amount = self.whole_dong(name, self.required(name)?)?;
        if amount == 0 {
            return Err(ParseError::AmountNotPositive {
                field: self.path_of(name),
            });
        }
        Ok(amount)
    }

    /// A balance, which may be zero or negative (overdraft); absent or `null` reads as `None`.
    pub fn optional_balance(&self, name: &str) -> Result<Option<i64>, ParseError> {
        self.get(name)
            .map(|value| self.whole_dong(name, value))
            .transpose()
    }

    /// A whole number of đồng within ±[`MAX_AMOUNT_MINOR`]. A double such as `3000.0` is
    /// accepted because it is exactly 3000; `3000.5` is refused as fractional.
    fn whole_dong(&self, name: &str, value: &Value) -> Result<i64, ParseError> {
        let Value::Number(number) = value else {
            return Err(self.invalid(name, "must be a JSON number"));
        };
        let out_of_range = || ParseError::AmountOutOfRange {
            field: self.path_of(name),
        };
        let amount = exact_integer(number).ok_or_else(|| {
            if is_fractional(number) {
                ParseError::AmountFractional {
                    field: self.path_of(name),
                }
            } else {
                out_of_range()
            }
        })?;
        if amount.unsigned_abs() > MAX_AMOUNT_MINOR.unsigned_abs() {
            return Err(out_of_range());
        }
        Ok(amount)
    }

    /// A bank timestamp. Feeds send Vietnam local time without an offset
    /// (`2023-03-25 14:02:37`), read as UTC+7; an RFC 3339 time with an explicit offset is
    /// taken as given.
    pub fn local_time(&self, name: &str) -> Result<DateTime<Utc>, ParseError> {
        let text = self.required_text(name)?;
        if let Ok(time) = DateTime::parse_from_rfc3339(&text) {
            return Ok(time.with_timezone(&Utc));
        }
        let naive = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| self.invalid(name, "must be a date-time such as 2023-03-25 14:02:37"))?;
        FixedOffset::east_opt(VIETNAM_OFFSET_SECONDS)
            .and_then(|vietnam| vietnam.from_local_datetime(&naive).single())
            .map(|time| time.with_timezone(&Utc))
            .ok_or_else(|| self.invalid(name, "is not a representable time"))
    }

    /// An RFC 3339 date-time that must carry its offset (our own `standard` body).
    pub fn rfc3339_time(&self, name: &str) -> Result<DateTime<Utc>, ParseError> {
        let text = self.required_text(name)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|_| self.invalid(name, "must be an RFC 3339 date-time with an offset"))
    }
}

/// The number as an exact `i64`, if it is one.
fn exact_integer(number: &Number) -> Option<i64> {
    if let Some(integer) = number.as_i64() {
        return Some(integer);
    }
    let double = number.as_f64().filter(|_| number.is_f64())?;
    if double.fract() != 0.0 || double.abs() > MAX_EXACT_DOUBLE {
        return None;
    }
    // In range and integral, so the conversion is exact.
    Some(double as i64)
}

fn is_fractional(number: &Number) -> bool {
    number.is_f64() && number.as_f64().is_some_and(|double| double.fract() != 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn amount(value: Value) -> Result<i64, ParseError> {
        let body = json!({ "data": { "amount": value } });
        Fields::root(&body)?
            .object("data")?
            .positive_amount("amount")
    }

    fn field() -> String {
        "data.amount".to_owned()
    }

    #[test]
    fn amounts_are_positive_whole_dong() {
        assert_eq!(amount(json!(2_277_000)), Ok(2_277_000));
        assert_eq!(amount(json!(3000.0)), Ok(3000));
        assert_eq!(amount(json!(MAX_AMOUNT_MINOR)), Ok(MAX_AMOUNT_MINOR));
    }

    #[test]
    fn bad_amounts_are_refused_precisely() {
        assert_eq!(
            amount(json!(0)),
            Err(ParseError::AmountNotPositive { field: field() })
        );
        assert_eq!(
            amount(json!(-5000)),
            Err(ParseError::AmountNotPositive { field: field() })
        );
        assert_eq!(
            amount(json!(3000.5)),
            Err(ParseError::AmountFractional { field: field() })
        );
        assert_eq!(
            amount(json!(-0.25)),
            Err(ParseError::AmountFractional { field: field() })
        );
        for too_large in [
            json!(MAX_AMOUNT_MINOR + 1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
            json!(9_007_199_254_740_994.0),
        ] {
            assert_eq!(
                amount(too_large.clone()),
                Err(ParseError::AmountOutOfRange { field: field() }),
                "{too_large}"
            );
        }
        assert_eq!(
            amount(json!("5000")),
            Err(ParseError::InvalidField {
                field: field(),
                problem: "must be a JSON number"
            })
        );
        assert_eq!(
            amount(Value::Null),
            Err(ParseError::MissingField { field: field() })
        );
    }

    #[test]
    fn signed_amounts_and_balances() {
        let body = json!({"out": -50_000, "zero": 0, "balance": -1200, "none": null});
        let fields = Fields::root(&body).expect("object");
        assert_eq!(fields.nonzero_amount("out"), Ok(-50_000));
        assert_eq!(
            fields.nonzero_amount("zero"),
            Err(ParseError::AmountNotPositive {
                field: "zero".to_owned()
            })
        );
        assert_eq!(fields.optional_balance("balance"), Ok(Some(-1200)));
        assert_eq!(fields.optional_balance("zero"), Ok(Some(0)));
        assert_eq!(fields.optional_balance("none"), Ok(None));
        assert_eq!(fields.optional_balance("absent"), Ok(None));
    }

    #[test]
    fn local_times_without_offset_are_vietnam_time() {
        let body = json!({
            "space": "2023-03-25 14:02:37",
            "t": "2023-03-25T14:02:37",
            "utc": "2023-03-25T07:02:37Z",
            "offset": "2023-03-25T14:02:37+07:00",
            "garbage": "25/03/2023 14:02",
        });
        let fields = Fields::root(&body).expect("object");
        let expected = DateTime::parse_from_rfc3339("2023-03-25T07:02:37Z")
            .expect("valid")
            .with_timezone(&Utc);
        for name in ["space", "t", "utc", "offset"] {
            assert_eq!(fields.local_time(name), Ok(expected), "{name}");
        }
        assert_eq!(
            fields.local_time("garbage").map_err(|e| e.code()),
            Err("WEBHOOK_FIELD_INVALID")
        );
        assert_eq!(
            fields.rfc3339_time("space").map_err(|e| e.code()),
            Err("WEBHOOK_FIELD_INVALID")
        );
        assert_eq!(fields.rfc3339_time("offset"), Ok(expected));
    }

    #[test]
    fn identifiers_and_texts() {
        let body = json!({
            "n": 92704, "s": " 246745 ", "blank": "  ", "f": 1.5, "obj": {}, "memo": " a  b "
        });
        let fields = Fields::root(&body).expect("object");
        assert_eq!(fields.identifier("n"), Ok("92704".to_owned()));
        assert_eq!(fields.identifier("s"), Ok("246745".to_owned()));
        assert_eq!(
            fields.identifier("blank"),
            Err(ParseError::MissingField {
                field: "blank".to_owned()
            })
        );
        assert_eq!(
            fields.identifier("f").map_err(|e| e.code()),
            Err("WEBHOOK_FIELD_INVALID")
        );
        assert_eq!(fields.optional_text("blank"), Ok(None));
        assert_eq!(fields.text_or_empty("memo"), Ok(" a  b ".to_owned()));
        assert_eq!(fields.text_or_empty("absent"), Ok(String::new()));
        assert_eq!(
            fields.text_or_empty("n").map_err(|e| e.code()),
            Err("WEBHOOK_FIELD_INVALID")
        );
        assert_eq!(
            fields.object("obj").map(|f| f.path_of("x")),
            Ok("obj.x".to_owned())
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_named() {
        assert_eq!(
            Fields::root(&json!([1])).map(|f| f.path_of("x")),
            Err(ParseError::InvalidField {
                field: "body".to_owned(),
                problem: "must be a JSON object"
            })
        );
    }
}
