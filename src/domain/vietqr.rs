//! VietQR: EMVCo Merchant-Presented-Mode QR payloads with the NAPAS profile.
//!
//! A payload is a flat list of TLV fields (`tag` 2 digits, `length` 2 digits, `value`), some of
//! whose values are themselves TLV lists (templates 38 and 62). NAPAS fixes these:
//!
//! | tag      | meaning                                   | rule                                |
//! |----------|-------------------------------------------|-------------------------------------|
//! | 00       | payload format indicator                  | "01", first field                   |
//! | 01       | point of initiation                       | "11" static, "12" dynamic           |
//! | 38       | merchant account template                 |                                     |
//! | 38.00    | NAPAS GUID                                | "A000000727"                        |
//! | 38.01    | beneficiary template                      |                                     |
//! | 38.01.00 | acquirer (bank) BIN                       | 6 digits                            |
//! | 38.01.01 | account or card number                    | up to 19 letters or digits          |
//! | 38.02    | service code (absent on QR Push codes)    | "QRIBFTTA" account, "QRIBFTTC" card |
//! | 53       | currency                                  | "704" (VND)                         |
//! | 54       | amount                                    | VND digits, at most 13              |
//! | 58       | country                                   | "VN"                                |
//! | 62       | additional data template                  |                                     |
//! | 62.08    | purpose of transaction                    | ≤ 25 ASCII letters, digits, spaces  |
//! | 63       | CRC-16/CCITT-FALSE of everything before   | 4 hex digits, last field            |
//!
//! Lengths count characters, not bytes (EMVCo), and range from 01 to 99. Other top-level tags
//! (52 MCC, 59 name, 60 city, 64 language template, 80+ unreserved, ...) and other 62 sub-fields
//! are kept as they are so that a parsed code re-encodes to the same payload.

use std::fmt;

use crc::{Crc, CRC_16_IBM_3740};

use super::text::{purpose_text, PURPOSE_MAX_LEN};

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor); the `crc`
/// catalogue lists it under its registered name CRC-16/IBM-3740.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// EMVCo caps a whole payload at 512 characters; checking it first also bounds parsing work.
pub const MAX_PAYLOAD_LEN: usize = 512;
/// NAPAS registered application identifier, the value of tag 38.00.
pub const NAPAS_GUID: &str = "A000000727";
/// ISO 4217 numeric code of the Vietnamese đồng, the only currency VietQR carries.
pub const CURRENCY_VND: &str = "704";
pub const COUNTRY_VN: &str = "VN";
/// Longest amount tag 54 may hold.
pub const AMOUNT_MAX_DIGITS: usize = 13;
/// Longest consumer (account or card) id NAPAS allows in tag 38.01.01.
pub const ACCOUNT_MAX_LEN: usize = 19;

const PAYLOAD_FORMAT_VERSION: &str = "01";
/// Tag, length and the four CRC digits: "6304" + "ABCD".
const CRC_FIELD_LEN: usize = 8;
const CRC_FIELD_HEADER: &str = "6304";

mod tag {
    pub const PAYLOAD_FORMAT: u8 = 0;
    pub const INITIATION: u8 = 1;
    pub const MERCHANT_ACCOUNT: u8 = 38;
    pub const CURRENCY: u8 = 53;
    pub const AMOUNT: u8 = 54;
    pub const COUNTRY: u8 = 58;
    pub const ADDITIONAL_DATA: u8 = 62;
    pub const CRC: u8 = 63;

    pub const GUID: u8 = 0;
    pub const BENEFICIARY: u8 = 1;
    pub const SERVICE: u8 = 2;

    pub const BIN: u8 = 0;
    pub const ACCOUNT: u8 = 1;

    pub const PURPOSE: u8 = 8;
}

/// Point of initiation method (tag 01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiation {
    /// "11": the same code is shown for many payments (a stall sticker).
    Static,
    /// "12": the code is made for one payment (a payment intent).
    Dynamic,
}

impl Initiation {
    pub fn code(self) -> &'static str {
        match self {
            Initiation::Static => "11",
            Initiation::Dynamic => "12",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "11" => Some(Initiation::Static),
            "12" => Some(Initiation::Dynamic),
            _ => None,
        }
    }
}

/// NAPAS service code (tag 38.02): what kind of number 38.01.01 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// "QRIBFTTA": interbank fast transfer to an account number.
    Account,
    /// "QRIBFTTC": interbank fast transfer to a card number.
    Card,
}

impl Service {
    pub fn code(self) -> &'static str {
        match self {
            Service::Account => "QRIBFTTA",
            Service::Card => "QRIBFTTC",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "QRIBFTTA" => Some(Service::Account),
            "QRIBFTTC" => Some(Service::Card),
            _ => None,
        }
    }

    /// Digits an account or card number of this kind may have when we issue a code.
    fn number_length(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Service::Account => 6..=ACCOUNT_MAX_LEN,
            Service::Card => 16..=ACCOUNT_MAX_LEN,
        }
    }
}

/// One TLV field kept verbatim from a parsed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvField {
    pub tag: u8,
    pub value: String,
}

/// Why a TLV list could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlvFault {
    /// Fewer than the four characters of a tag and a length remain.
    HeaderTruncated {
        remaining: usize,
    },
    TagNotNumeric {
        tag: String,
    },
    LengthNotNumeric {
        tag: String,
        length: String,
    },
    /// EMVCo lengths run from 01 to 99.
    ZeroLength {
        tag: String,
    },
    /// The length says more characters than the list (or the payload before the CRC) holds.
    ValueRunsPastEnd {
        tag: String,
        declared: usize,
        remaining: usize,
    },
    DuplicateTag {
        tag: String,
    },
    /// Tag 00 must open the payload.
    PayloadFormatNotFirst {
        first_tag: String,
    },
}

impl fmt::Display for TlvFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvFault::HeaderTruncated { remaining } => write!(
                f,
                "only {remaining} character(s) left where a 2-digit tag and 2-digit length must be"
            ),
            TlvFault::TagNotNumeric { tag } => write!(f, "tag {tag:?} is not two digits"),
            TlvFault::LengthNotNumeric { tag, length } => {
                write!(f, "length {length:?} of tag {tag} is not two digits")
            }
            TlvFault::ZeroLength { tag } => {
                write!(f, "tag {tag} has length 00; lengths run from 01 to 99")
            }
            TlvFault::ValueRunsPastEnd {
                tag,
                declared,
                remaining,
            } => write!(
                f,
                "tag {tag} declares {declared} character(s) but only {remaining} remain"
            ),
            TlvFault::DuplicateTag { tag } => write!(f, "tag {tag} appears more than once"),
            TlvFault::PayloadFormatNotFirst { first_tag } => write!(
                f,
                "the payload must start with tag 00 (payload format), not tag {first_tag}"
            ),
        }
    }
}

/// Every way a payload or a request for a new code can break the VietQR rules. Each variant
/// names one rule; [`VietQrError::code`] gives it a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VietQrError {
    #[error("payload is {length} characters long; EMVCo allows at most {MAX_PAYLOAD_LEN}")]
    PayloadTooLong { length: usize },
    #[error("payload does not end with the CRC field \"6304\" followed by 4 hex digits")]
    CrcMissing,
    #[error("CRC {found:?} is not 4 hexadecimal digits")]
    CrcMalformed { found: String },
    #[error("CRC mismatch: payload says {found}, content gives {computed}")]
    CrcMismatch { found: String, computed: String },
    #[error("malformed TLV at character {offset}: {fault}")]
    TlvMalformed { offset: usize, fault: TlvFault },
    #[error("malformed TLV inside template {template} at character {offset}: {fault}")]
    NestedTlvMalformed {
        template: &'static str,
        offset: usize,
        fault: TlvFault,
    },
    #[error("required field {field} is missing")]
    MissingField { field: &'static str },
    #[error("field {field} is not part of the VietQR profile")]
    UnexpectedField { field: String },
    #[error("payload format indicator (tag 00) is {found:?}; only \"01\" is supported")]
    UnsupportedVersion { found: String },
    #[error(
        "point of initiation (tag 01) is {found:?}; must be \"11\" (static) or \"12\" (dynamic)"
    )]
    InvalidInitiation { found: String },
    #[error("merchant account GUID (tag 38.00) is {found:?}; VietQR requires {NAPAS_GUID:?}")]
    WrongGuid { found: String },
    #[error("bank BIN {found:?} is not 6 digits")]
    InvalidBin { found: String },
    #[error("account number {found:?} is invalid: {rule}")]
    InvalidAccount { found: String, rule: &'static str },
    #[error(
        "service code (tag 38.02) {found:?} is neither QRIBFTTA (account) nor QRIBFTTC (card)"
    )]
    UnknownService { found: String },
    #[error("amount {found:?} is invalid: {rule}")]
    InvalidAmount { found: String, rule: &'static str },
    #[error("currency (tag 53) is {found:?}; VietQR requires 704 (VND)")]
    InvalidCurrency { found: String },
    #[error("country (tag 58) is {found:?}; VietQR requires VN")]
    InvalidCountry { found: String },
    #[error("purpose (tag 62.08) is {length} characters long; at most {PURPOSE_MAX_LEN} allowed")]
    PurposeTooLong { length: usize },
    #[error("purpose {found:?} is invalid: {rule}")]
    InvalidPurpose { found: String, rule: &'static str },
}

impl VietQrError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            VietQrError::PayloadTooLong { .. } => "QR_PAYLOAD_TOO_LONG",
            VietQrError::CrcMissing => "QR_CRC_MISSING",
            VietQrError::CrcMalformed { .. } => "QR_CRC_MALFORMED",
            VietQrError::CrcMismatch { .. } => "QR_CRC_MISMATCH",
            VietQrError::TlvMalformed { .. } => "QR_TLV_MALFORMED",
            VietQrError::NestedTlvMalformed { .. } => "QR_NESTED_TLV_MALFORMED",
            VietQrError::MissingField { .. } => "QR_MISSING_FIELD",
            VietQrError::UnexpectedField { .. } => "QR_UNEXPECTED_FIELD",
            VietQrError::UnsupportedVersion { .. } => "QR_UNSUPPORTED_VERSION",
            VietQrError::InvalidInitiation { .. } => "QR_INVALID_INITIATION",
            VietQrError::WrongGuid { .. } => "QR_WRONG_GUID",
            VietQrError::InvalidBin { .. } => "QR_INVALID_BIN",
            VietQrError::InvalidAccount { .. } => "QR_INVALID_ACCOUNT",
            VietQrError::UnknownService { .. } => "QR_UNKNOWN_SERVICE",
            VietQrError::InvalidAmount { .. } => "QR_INVALID_AMOUNT",
            VietQrError::InvalidCurrency { .. } => "QR_INVALID_CURRENCY",
            VietQrError::InvalidCountry { .. } => "QR_INVALID_COUNTRY",
            VietQrError::PurposeTooLong { .. } => "QR_PURPOSE_TOO_LONG",
            VietQrError::InvalidPurpose { .. } => "QR_INVALID_PURPOSE",
        }
    }
}

/// A decoded or to-be-encoded VietQR code.
///
/// Fields are private so that every value is either built by [`VietQr::new`] or read by
/// [`VietQr::parse`]; both enforce the limits, which keeps [`VietQr::encode`] infallible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VietQr {
    initiation: Initiation,
    bin: String,
    account: String,
    /// `None` only for parsed NAPAS "QR Push" merchant codes, which carry no tag 38.02.
    service: Option<Service>,
    amount: Option<u64>,
    purpose: Option<String>,
    /// Sub-fields of template 62 other than 08, in tag order.
    other_additional_data: Vec<TlvField>,
    /// Top-level fields outside the NAPAS transfer profile (52, 59, 60, 64, 80, ...), in tag
    /// order.
    other_fields: Vec<TlvField>,
}

impl VietQr {
    /// Builds a code for one of our collection accounts.
    ///
    /// Stricter than [`VietQr::parse`], which must also read codes other issuers made: the
    /// BIN is 6 digits, the number is 6–19 digits (16–19 for a card), the amount is > 0 with at
    /// most 13 digits, and the purpose is folded with [`purpose_text`] (ASCII, cut to 25).
    pub fn new(
        initiation: Initiation,
        bin: &str,
        account: &str,
        service: Service,
        amount: Option<u64>,
        purpose: Option<&str>,
    ) -> Result<Self, VietQrError> {
        check_bin(bin)?;
        if !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VietQrError::InvalidAccount {
                found: account.to_owned(),
                rule: "must be digits only",
            });
        }
        if !service.number_length().contains(&account.len()) {
            return Err(VietQrError::InvalidAccount {
                found: account.to_owned(),
                rule: match service {
                    Service::Account => "an account number has 6 to 19 digits",
                    Service::Card => "a card number has 16 to 19 digits",
                },
            });
        }
        if let Some(amount) = amount {
            check_amount_value(amount, &amount.to_string())?;
        }
        let purpose = purpose
            .map(|text| match purpose_text(text) {
                folded if folded.is_empty() => Err(VietQrError::InvalidPurpose {
                    found: text.to_owned(),
                    rule: "has no letters or digits to keep",
                }),
                folded => Ok(folded),
            })
            .transpose()?;
        Ok(Self {
            initiation,
            bin: bin.to_owned(),
            account: account.to_owned(),
            service: Some(service),
            amount,
            purpose,
            other_additional_data: Vec::new(),
            other_fields: Vec::new(),
        })
    }

    pub fn initiation(&self) -> Initiation {
        self.initiation
    }

    /// The 6-digit NAPAS BIN of the receiving bank.
    pub fn bin(&self) -> &str {
        &self.bin
    }

    /// Account or card number; parsed codes may carry letters (virtual accounts, wallets).
    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn service(&self) -> Option<Service> {
        self.service
    }

    /// Amount in đồng, when the code fixes one.
    pub fn amount(&self) -> Option<u64> {
        self.amount
    }

    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }

    /// Sub-fields of template 62 other than the purpose (e.g. 62.05 reference label).
    pub fn other_additional_data(&self) -> &[TlvField] {
        &self.other_additional_data
    }

    /// Top-level fields outside the NAPAS transfer profile (e.g. 52 MCC, 59 merchant name).
    pub fn other_fields(&self) -> &[TlvField] {
        &self.other_fields
    }

    /// The payload string to put in a QR code, fields in ascending tag order, CRC last in
    /// uppercase hex.
    pub fn encode(&self) -> String {
        let mut beneficiary = String::new();
        write_tlv(&mut beneficiary, tag::BIN, &self.bin);
        write_tlv(&mut beneficiary, tag::ACCOUNT, &self.account);

        let mut merchant_account = String::new();
        write_tlv(&mut merchant_account, tag::GUID, NAPAS_GUID);
        write_tlv(&mut merchant_account, tag::BENEFICIARY, &beneficiary);
        if let Some(service) = self.service {
            write_tlv(&mut merchant_account, tag::SERVICE, service.code());
        }

        let mut fields = vec![
            (tag::PAYLOAD_FORMAT, PAYLOAD_FORMAT_VERSION.to_owned()),
            (tag::INITIATION, self.initiation.code().to_owned()),
            (tag::MERCHANT_ACCOUNT, merchant_account),
            (tag::CURRENCY, CURRENCY_VND.to_owned()),
            (tag::COUNTRY, COUNTRY_VN.to_owned()),
        ];
        if let Some(amount) = self.amount {
            fields.push((tag::AMOUNT, amount.to_string()));
        }
        let additional_data = self.encode_additional_data();
        if !additional_data.is_empty() {
            fields.push((tag::ADDITIONAL_DATA, additional_data));
        }
        fields.extend(self.other_fields.iter().map(|f| (f.tag, f.value.clone())));
        // Parsing rejects duplicate tags and keeps only unknown ones in `other_fields`, so the
        // tags are distinct and a stable sort gives the canonical EMVCo order.
        fields.sort_by_key(|(tag, _)| *tag);

        let mut payload = String::new();
        for (tag, value) in &fields {
            write_tlv(&mut payload, *tag, value);
        }
        payload.push_str(CRC_FIELD_HEADER);
        let crc = CRC16.checksum(payload.as_bytes());
        payload.push_str(&format!("{crc:04X}"));
        payload
    }

    fn encode_additional_data(&self) -> String {
        let mut sub_fields: Vec<(u8, &str)> = self
            .other_additional_data
            .iter()
            .map(|f| (f.tag, f.value.as_str()))
            .collect();
        if let Some(purpose) = &self.purpose {
            sub_fields.push((tag::PURPOSE, purpose));
        }
        sub_fields.sort_by_key(|(tag, _)| *tag);
        let mut value = String::new();
        for (tag, sub_value) in sub_fields {
            write_tlv(&mut value, tag, sub_value);
        }
        value
    }

    /// Decodes and validates a payload: CRC first (so a damaged scan reports as damaged), then
    /// the TLV structure, then each NAPAS rule. The CRC is accepted in either case.
    pub fn parse(payload: &str) -> Result<Self, VietQrError> {
        let length = payload.chars().count();
        if length > MAX_PAYLOAD_LEN {
            return Err(VietQrError::PayloadTooLong { length });
        }
        let body = verify_crc(payload)?;

        let mut fields = parse_tlv(body, 0)
            .map_err(|(offset, fault)| VietQrError::TlvMalformed { offset, fault })?;
        // The CRC field was split off the end; one more tag 63 inside would be a second CRC.
        if let Some(second_crc) = fields.iter().find(|f| f.field.tag == tag::CRC) {
            return Err(VietQrError::TlvMalformed {
                offset: second_crc.offset,
                fault: TlvFault::DuplicateTag {
                    tag: format!("{:02}", tag::CRC),
                },
            });
        }

        let version_index = fields
            .iter()
            .position(|f| f.field.tag == tag::PAYLOAD_FORMAT)
            .ok_or(VietQrError::MissingField { field: "00" })?;
        if version_index != 0 {
            return Err(VietQrError::TlvMalformed {
                offset: 0,
                fault: TlvFault::PayloadFormatNotFirst {
                    first_tag: format!("{:02}", fields[0].field.tag),
                },
            });
        }
        let version = fields.remove(version_index).field;
        if version.value != PAYLOAD_FORMAT_VERSION {
            return Err(VietQrError::UnsupportedVersion {
                found: version.value,
            });
        }

        let initiation_field = take_field(&mut fields, tag::INITIATION)
            .ok_or(VietQrError::MissingField { field: "01" })?;
        let initiation = Initiation::from_code(&initiation_field.value).ok_or_else(|| {
            VietQrError::InvalidInitiation {
                found: initiation_field.value.clone(),
            }
        })?;

        let merchant_account = take_located(&mut fields, tag::MERCHANT_ACCOUNT)
            .ok_or(VietQrError::MissingField { field: "38" })?;
        let MerchantAccount {
            bin,
            account,
            service,
        } = parse_merchant_account(&merchant_account)?;

        let currency = take_field(&mut fields, tag::CURRENCY)
            .ok_or(VietQrError::MissingField { field: "53" })?;
        if currency.value != CURRENCY_VND {
            return Err(VietQrError::InvalidCurrency {
                found: currency.value,
            });
        }

        let amount = take_field(&mut fields, tag::AMOUNT)
            .map(|field| parse_amount(&field.value))
            .transpose()?;

        let country = take_field(&mut fields, tag::COUNTRY)
            .ok_or(VietQrError::MissingField { field: "58" })?;
        if country.value != COUNTRY_VN {
            return Err(VietQrError::InvalidCountry {
                found: country.value,
            });
        }

        let (purpose, other_additional_data) = match take_located(&mut fields, tag::ADDITIONAL_DATA)
        {
            Some(additional_data) => parse_additional_data(&additional_data)?,
            None => (None, Vec::new()),
        };

        let mut other_fields: Vec<TlvField> = fields.into_iter().map(|f| f.field).collect();
        other_fields.sort_by_key(|f| f.tag);

        Ok(Self {
            initiation,
            bin,
            account,
            service,
            amount,
            purpose,
            other_additional_data,
            other_fields,
        })
    }
}

/// Checks the trailing "6304XXXX" (hex digits in either case) against the CRC of everything up
/// to and including "6304", and returns the payload before the CRC field.
fn verify_crc(payload: &str) -> Result<&str, VietQrError> {
    let Some(split) = payload.len().checked_sub(CRC_FIELD_LEN) else {
        return Err(VietQrError::CrcMissing);
    };
    let (Some(body), Some(crc_field)) = (payload.get(..split), payload.get(split..)) else {
        // The last 8 bytes are not 8 whole characters, so they cannot be "6304" + 4 digits.
        return Err(VietQrError::CrcMissing);
    };
    let Some(found) = crc_field.strip_prefix(CRC_FIELD_HEADER) else {
        return Err(VietQrError::CrcMissing);
    };
    // The digit check comes first because from_str_radix alone would accept a leading '+'.
    let found_value = found
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| u16::from_str_radix(found, 16).ok())
        .flatten()
        .ok_or_else(|| VietQrError::CrcMalformed {
            found: found.to_owned(),
        })?;
    let covered = &payload[..split + CRC_FIELD_HEADER.len()];
    let computed = CRC16.checksum(covered.as_bytes());
    if computed != found_value {
        return Err(VietQrError::CrcMismatch {
            found: found.to_owned(),
            computed: format!("{computed:04X}"),
        });
    }
    Ok(body)
}

/// A field with the character offset where it starts in the whole payload, for error messages.
struct LocatedField {
    offset: usize,
    field: TlvField,
}

/// Where a field's value starts, so nested templates can report absolute offsets.
struct LocatedValue {
    value_offset: usize,
    value: String,
}

/// Reads a TLV list completely. `base_offset` is the character position of `text` within the
/// payload. Errors carry the offset of the offending field.
fn parse_tlv(text: &str, base_offset: usize) -> Result<Vec<LocatedField>, (usize, TlvFault)> {
    let mut fields: Vec<LocatedField> = Vec::new();
    let mut rest = text;
    let mut offset = base_offset;
    let mut remaining = text.chars().count();
    while !rest.is_empty() {
        let Some((header, after_header)) = split_chars(rest, 4) else {
            return Err((offset, TlvFault::HeaderTruncated { remaining }));
        };
        // The header may hold non-ASCII characters in a broken payload, so split by characters.
        let tag_text: String = header.chars().take(2).collect();
        let length_text: String = header.chars().skip(2).collect();
        let Some(tag) = two_digits(&tag_text) else {
            return Err((offset, TlvFault::TagNotNumeric { tag: tag_text }));
        };
        let Some(declared) = two_digits(&length_text) else {
            return Err((
                offset,
                TlvFault::LengthNotNumeric {
                    tag: tag_text,
                    length: length_text,
                },
            ));
        };
        let declared = usize::from(declared);
        if declared == 0 {
            return Err((offset, TlvFault::ZeroLength { tag: tag_text }));
        }
        let Some((value, after_value)) = split_chars(after_header, declared) else {
            return Err((
                offset,
                TlvFault::ValueRunsPastEnd {
                    tag: tag_text,
                    declared,
                    remaining: remaining - 4,
                },
            ));
        };
        if fields.iter().any(|f| f.field.tag == tag) {
            return Err((offset, TlvFault::DuplicateTag { tag: tag_text }));
        }
        fields.push(LocatedField {
            offset,
            field: TlvField {
                tag,
                value: value.to_owned(),
            },
        });
        offset += 4 + declared;
        remaining -= 4 + declared;
        rest = after_value;
    }
    Ok(fields)
}

/// Splits off the first `count` characters, or `None` when there are fewer.
fn split_chars(text: &str, count: usize) -> Option<(&str, &str)> {
    if count == 0 {
        return Some(("", text));
    }
    let (last_index, last_char) = text.char_indices().nth(count - 1)?;
    Some(text.split_at(last_index + last_char.len_utf8()))
}

/// "00".."99" as a number; anything else (signs, spaces, non-ASCII digits) is `None`.
fn two_digits(text: &str) -> Option<u8> {
    match text.as_bytes() {
        [tens @ b'0'..=b'9', units @ b'0'..=b'9'] => Some((tens - b'0') * 10 + (units - b'0')),
        _ => None,
    }
}

fn take_located(fields: &mut Vec<LocatedField>, tag: u8) -> Option<LocatedValue> {
    let index = fields.iter().position(|f| f.field.tag == tag)?;
    let located = fields.remove(index);
    Some(LocatedValue {
        value_offset: located.offset + 4,
        value: located.field.value,
    })
}

fn take_field(fields: &mut Vec<LocatedField>, tag: u8) -> Option<TlvField> {
    let index = fields.iter().position(|f| f.field.tag == tag)?;
    Some(fields.remove(index).field)
}

/// Parses a nested template, rejecting any sub-tag for which `allowed` is false.
fn parse_template(
    template: &LocatedValue,
    name: &'static str,
    allowed: impl Fn(u8) -> bool,
) -> Result<Vec<LocatedField>, VietQrError> {
    let fields = parse_tlv(&template.value, template.value_offset).map_err(|(offset, fault)| {
        VietQrError::NestedTlvMalformed {
            template: name,
            offset,
            fault,
        }
    })?;
    if let Some(unexpected) = fields.iter().find(|f| !allowed(f.field.tag)) {
        return Err(VietQrError::UnexpectedField {
            field: format!("{name}.{:02}", unexpected.field.tag),
        });
    }
    Ok(fields)
}

struct MerchantAccount {
    bin: String,
    account: String,
    service: Option<Service>,
}

fn parse_merchant_account(template: &LocatedValue) -> Result<MerchantAccount, VietQrError> {
    // NAPAS defines only these three; anything else means a code we would misread.
    let mut fields = parse_template(template, "38", |sub_tag| {
        [tag::GUID, tag::BENEFICIARY, tag::SERVICE].contains(&sub_tag)
    })?;

    let guid =
        take_field(&mut fields, tag::GUID).ok_or(VietQrError::MissingField { field: "38.00" })?;
    if guid.value != NAPAS_GUID {
        return Err(VietQrError::WrongGuid { found: guid.value });
    }

    let beneficiary = take_located(&mut fields, tag::BENEFICIARY)
        .ok_or(VietQrError::MissingField { field: "38.01" })?;
    let mut beneficiary_fields = parse_template(&beneficiary, "38.01", |sub_tag| {
        [tag::BIN, tag::ACCOUNT].contains(&sub_tag)
    })?;
    let bin = take_field(&mut beneficiary_fields, tag::BIN)
        .ok_or(VietQrError::MissingField { field: "38.01.00" })?
        .value;
    check_bin(&bin)?;
    let account = take_field(&mut beneficiary_fields, tag::ACCOUNT)
        .ok_or(VietQrError::MissingField { field: "38.01.01" })?
        .value;
    // Other issuers use letters too (payOS virtual accounts, MoMo wallets), so parsing only
    // requires ASCII letters and digits within the NAPAS length.
    if account.len() > ACCOUNT_MAX_LEN || !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(VietQrError::InvalidAccount {
            found: account,
            rule: "must be at most 19 ASCII letters or digits",
        });
    }

    let service = take_field(&mut fields, tag::SERVICE)
        .map(|field| {
            Service::from_code(&field.value)
                .ok_or(VietQrError::UnknownService { found: field.value })
        })
        .transpose()?;

    Ok(MerchantAccount {
        bin,
        account,
        service,
    })
}

type AdditionalData = (Option<String>, Vec<TlvField>);

fn parse_additional_data(template: &LocatedValue) -> Result<AdditionalData, VietQrError> {
    // EMVCo defines the other sub-fields (62.03 store label, 62.05 reference label, ...) and
    // leaves 50-99 to payment systems; wallets and NAPAS push codes fill some of them. None
    // changes where the money goes, so all are kept verbatim.
    let mut fields = parse_template(template, "62", |_| true)?;
    let purpose = take_field(&mut fields, tag::PURPOSE)
        .map(|field| check_purpose(field.value))
        .transpose()?;
    let mut others: Vec<TlvField> = fields.into_iter().map(|f| f.field).collect();
    others.sort_by_key(|f| f.tag);
    Ok((purpose, others))
}

fn check_purpose(purpose: String) -> Result<String, VietQrError> {
    let length = purpose.chars().count();
    if length > PURPOSE_MAX_LEN {
        return Err(VietQrError::PurposeTooLong { length });
    }
    if !purpose
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b' ')
    {
        return Err(VietQrError::InvalidPurpose {
            found: purpose,
            rule: "only ASCII letters, digits and spaces are allowed",
        });
    }
    Ok(purpose)
}

fn check_bin(bin: &str) -> Result<(), VietQrError> {
    if bin.len() == 6 && bin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(VietQrError::InvalidBin {
            found: bin.to_owned(),
        })
    }
}

fn parse_amount(text: &str) -> Result<u64, VietQrError> {
    let invalid = |rule| VietQrError::InvalidAmount {
        found: text.to_owned(),
        rule,
    };
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "VND amounts are whole numbers written in digits only",
        ));
    }
    if text.len() > AMOUNT_MAX_DIGITS {
        return Err(invalid("more than 13 digits"));
    }
    if text.len() > 1 && text.starts_with('0') {
        // Rejected rather than normalised so a parsed code always re-encodes to itself.
        return Err(invalid("must not start with 0"));
    }
    let amount = text
        .parse::<u64>()
        .map_err(|_| invalid("VND amounts are whole numbers written in digits only"))?;
    check_amount_value(amount, text)?;
    Ok(amount)
}

fn check_amount_value(amount: u64, text: &str) -> Result<(), VietQrError> {
    let invalid = |rule| VietQrError::InvalidAmount {
        found: text.to_owned(),
        rule,
    };
    if amount == 0 {
        return Err(invalid("must be greater than zero"));
    }
    if text.len() > AMOUNT_MAX_DIGITS {
        return Err(invalid("more than 13 digits"));
    }
    Ok(())
}

/// Appends one TLV field. Callers only pass values whose length the constructors and the
/// parser have bounded to 1..=99 characters.
fn write_tlv(out: &mut String, tag: u8, value: &str) {
    out.push_str(&format!("{tag:02}{:02}{value}", value.chars().count()));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct VectorFile {
        vectors: Vec<Vector>,
    }

    /// One payload from tests/fixtures/vietqr.json (a copy of shared/vectors/vietqr.json).
    #[derive(Deserialize)]
    struct Vector {
        id: String,
        expect: String,
        payload: String,
        bin: Option<String>,
        account: Option<String>,
        amount: Option<String>,
        purpose: Option<String>,
        service: Option<String>,
        poi_method: Option<String>,
    }

    fn vectors() -> Vec<Vector> {
        let file: VectorFile =
            serde_json::from_str(include_str!("../../tests/fixtures/vietqr.json")).unwrap();
        file.vectors
    }

    fn vector(id: &str) -> Vector {
        vectors().into_iter().find(|v| v.id == id).unwrap()
    }

    fn tlv(tag: &str, value: &str) -> String {
        format!("{tag}{:02}{value}", value.chars().count())
    }

    fn with_crc(body: &str) -> String {
        let covered = format!("{body}{CRC_FIELD_HEADER}");
        let crc = CRC16.checksum(covered.as_bytes());
        format!("{covered}{crc:04X}")
    }

    fn merchant_account(guid: &str, beneficiary: &str, service: Option<&str>) -> String {
        let mut value = tlv("00", guid) + &tlv("01", beneficiary);
        if let Some(service) = service {
            value += &tlv("02", service);
        }
        value
    }

    fn beneficiary(bin: &str, account: &str) -> String {
        tlv("00", bin) + &tlv("01", account)
    }

    /// The fields of vector "xuannghia-acb-dyn-1000", for building broken variants of it.
    fn valid_fields() -> Vec<(&'static str, String)> {
        vec![
            ("00", "01".into()),
            ("01", "12".into()),
            (
                "38",
                merchant_account(
                    NAPAS_GUID,
                    &beneficiary("970416", "257678859"),
                    Some("QRIBFTTA"),
                ),
            ),
            ("53", "704".into()),
            ("54", "1000".into()),
            ("58", "VN".into()),
            ("62", tlv("08", "Chuyen tien")),
        ]
    }

    fn build(fields: &[(&str, String)]) -> String {
        with_crc(
            &fields
                .iter()
                .map(|(tag, value)| tlv(tag, value))
                .collect::<String>(),
        )
    }

    fn replacing(tag: &str, value: &str) -> String {
        let mut fields = valid_fields();
        let field = fields.iter_mut().find(|(t, _)| *t == tag).unwrap();
        field.1 = value.to_owned();
        build(&fields)
    }

    fn without(tag: &str) -> String {
        let fields: Vec<_> = valid_fields()
            .into_iter()
            .filter(|(t, _)| *t != tag)
            .collect();
        build(&fields)
    }

    fn parse_error(payload: &str) -> VietQrError {
        VietQr::parse(payload).expect_err("payload must be rejected")
    }

    #[test]
    fn test_builder_reproduces_a_real_vector() {
        assert_eq!(
            build(&valid_fields()),
            vector("xuannghia-acb-dyn-1000").payload
        );
    }

    #[test]
    fn every_vector_decodes_to_its_listed_fields_or_is_rejected() {
        let mut checked = 0;
        for v in vectors() {
            match v.expect.as_str() {
                "valid" | "valid-case-insensitive" => {
                    let qr = VietQr::parse(&v.payload)
                        .unwrap_or_else(|e| panic!("{}: rejected: {e}", v.id));
                    assert_eq!(Some(qr.bin()), v.bin.as_deref(), "{}", v.id);
                    assert_eq!(Some(qr.account()), v.account.as_deref(), "{}", v.id);
                    assert_eq!(qr.amount().map(|a| a.to_string()), v.amount, "{}", v.id);
                    assert_eq!(qr.purpose(), v.purpose.as_deref(), "{}", v.id);
                    assert_eq!(
                        qr.service().map(Service::code),
                        v.service.as_deref(),
                        "{}",
                        v.id
                    );
                    assert_eq!(
                        Some(qr.initiation().code()),
                        v.poi_method.as_deref(),
                        "{}",
                        v.id
                    );
                }
                "invalid" => {
                    assert!(VietQr::parse(&v.payload).is_err(), "{}: accepted", v.id);
                }
                other => panic!("{}: unknown expectation {other:?}", v.id),
            }
            checked += 1;
        }
        assert_eq!(checked, 13, "every vector in the fixture is checked");
    }

    /// Every valid vector re-encodes to exactly its payload, except that a lowercase CRC comes
    /// back uppercase ("mbbank-app-lowercase-crc"): DESIGN.md says CRCs are written as
    /// uppercase hex and only parsed in either case, so that one cannot round-trip byte for byte.
    /// Extra fields (52, 59, 60, 80, 62.03, 62.05) survive because they are kept and all
    /// vectors list their fields in ascending tag order, which is the order encode writes.
    #[test]
    fn every_valid_vector_re_encodes_to_its_payload() {
        for v in vectors()
            .into_iter()
            .filter(|v| v.expect.starts_with("valid"))
        {
            let encoded = VietQr::parse(&v.payload).unwrap().encode();
            let (body, crc) = v.payload.split_at(v.payload.len() - 4);
            assert_eq!(
                encoded,
                format!("{body}{}", crc.to_ascii_uppercase()),
                "{}",
                v.id
            );
            if crc == crc.to_ascii_uppercase() {
                assert_eq!(encoded, v.payload, "{}", v.id);
            }
        }
    }

    #[test]
    fn lowercase_crc_is_accepted_and_written_uppercase() {
        let payload = vector("mbbank-app-lowercase-crc").payload;
        assert!(payload.ends_with("79db"));
        let qr = VietQr::parse(&payload).unwrap();
        assert!(qr.encode().ends_with("630479DB"));

        let uppercase = vector("xuannghia-acb-dyn-1000").payload;
        let lowercase = uppercase.replace("6304BBB8", "6304bbb8");
        assert_eq!(
            VietQr::parse(&lowercase).unwrap(),
            VietQr::parse(&uppercase).unwrap()
        );
    }

    #[test]
    fn crc_with_leading_zero_is_padded_to_four_digits() {
        let payload = vector("techcombank-crc-leading-zero").payload;
        assert!(VietQr::parse(&payload)
            .unwrap()
            .encode()
            .ends_with("63040283"));
    }

    #[test]
    fn extra_fields_are_kept() {
        let momo = VietQr::parse(&vector("momo-via-bvbank").payload).unwrap();
        assert_eq!(
            momo.other_additional_data(),
            [TlvField {
                tag: 5,
                value: "MOMOW2W34875080".into()
            }]
        );
        assert_eq!(
            momo.other_fields(),
            [TlvField {
                tag: 80,
                value: "046".into()
            }]
        );
        assert_eq!(momo.purpose(), None);

        let push = VietQr::parse(&vector("napas-push-merchant").payload).unwrap();
        assert_eq!(push.service(), None);
        let tags: Vec<u8> = push.other_fields().iter().map(|f| f.tag).collect();
        assert_eq!(tags, [52, 59, 60]);
        assert_eq!(push.other_fields()[1].value, "PHUONG CAC");
        assert_eq!(push.other_additional_data()[0].tag, 3);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        // A merchant-information language template (64) in Vietnamese: "Chợ Đông" is 8
        // characters but 11 bytes. The CRC still covers the UTF-8 bytes.
        let mut fields = valid_fields();
        fields.push(("64", tlv("00", "vi") + &tlv("01", "Chợ Đông")));
        let payload = build(&fields);
        assert!(payload.contains("64180002vi0108Chợ Đông"));
        let qr = VietQr::parse(&payload).unwrap();
        assert_eq!(qr.other_fields()[0].value, "0002vi0108Chợ Đông");
        assert_eq!(qr.encode(), payload);
    }

    #[test]
    fn every_flipped_character_before_the_crc_is_a_crc_mismatch() {
        let payload = vector("liopay-vcb-dyn").payload;
        for position in 0..payload.len() - CRC_FIELD_LEN {
            let mut bytes = payload.clone().into_bytes();
            bytes[position] = if bytes[position] == b'7' { b'8' } else { b'7' };
            let damaged = String::from_utf8(bytes).unwrap();
            let error = parse_error(&damaged);
            assert_eq!(error.code(), "QR_CRC_MISMATCH", "position {position}");
        }
        let error = parse_error(&vector("neg-bad-crc").payload);
        assert_eq!(
            error,
            VietQrError::CrcMismatch {
                found: "BBB5".into(),
                computed: "BBB8".into()
            }
        );
    }

    #[test]
    fn crc_must_close_the_payload() {
        let valid = vector("xuannghia-acb-static").payload;
        for broken in [
            "",
            "6304",
            &valid[..valid.len() - 1],
            &valid[..valid.len() - 8],
            &format!("{valid} "),
            &valid.replace("6304AE9F", "6305AE9F"),
        ] {
            assert_eq!(parse_error(broken), VietQrError::CrcMissing, "{broken:?}");
        }
        for crc in ["AE9G", "+E9F", " AE9"] {
            let broken = valid.replace("AE9F", crc);
            assert_eq!(
                parse_error(&broken),
                VietQrError::CrcMalformed { found: crc.into() }
            );
        }
        // Multi-byte characters at the end: cut through by the 8-byte tail, before "6304", or
        // in place of the hex digits.
        assert_eq!(parse_error("000201€1234567").code(), "QR_CRC_MISSING");
        assert_eq!(parse_error("000201Đ6304AB").code(), "QR_CRC_MISSING");
        assert_eq!(parse_error("0002016304ĐĐ").code(), "QR_CRC_MALFORMED");
        assert_eq!(parse_error("00020163041Đ2").code(), "QR_CRC_MALFORMED");
    }

    #[test]
    fn payloads_over_512_characters_are_refused_before_parsing() {
        let error = parse_error(&"0".repeat(513));
        assert_eq!(error, VietQrError::PayloadTooLong { length: 513 });
        assert_eq!(error.code(), "QR_PAYLOAD_TOO_LONG");
    }

    #[test]
    fn lying_lengths_are_malformed_tlv() {
        // 62 claims 16 characters but only 15 stand before the CRC field.
        let body = tlv("00", "01") + &tlv("01", "12") + &tlv("53", "704") + "62160811Chuyen tien";
        assert_eq!(
            parse_error(&with_crc(&body)),
            VietQrError::TlvMalformed {
                offset: 19,
                fault: TlvFault::ValueRunsPastEnd {
                    tag: "62".into(),
                    declared: 16,
                    remaining: 15
                }
            }
        );
        // A length that claims less than is there leaves a tail that is not a field.
        let body = tlv("00", "01") + "0101" + "12";
        assert_eq!(
            parse_error(&with_crc(&body)),
            VietQrError::TlvMalformed {
                offset: 11,
                fault: TlvFault::HeaderTruncated { remaining: 1 }
            }
        );
    }

    #[test]
    fn malformed_top_level_tlv_names_the_fault() {
        let cases = [
            (
                "000201010A12",
                TlvFault::LengthNotNumeric {
                    tag: "01".into(),
                    length: "0A".into(),
                },
            ),
            ("000201X10212", TlvFault::TagNotNumeric { tag: "X1".into() }),
            ("0002010100", TlvFault::ZeroLength { tag: "01".into() }),
            (
                "000201010212010211",
                TlvFault::DuplicateTag { tag: "01".into() },
            ),
            (
                "00020163041234",
                TlvFault::DuplicateTag { tag: "63".into() },
            ),
            (
                "010212000201",
                TlvFault::PayloadFormatNotFirst {
                    first_tag: "01".into(),
                },
            ),
            ("000201 1", TlvFault::HeaderTruncated { remaining: 2 }),
            ("000201-102", TlvFault::TagNotNumeric { tag: "-1".into() }),
            (
                "000201010+12",
                TlvFault::LengthNotNumeric {
                    tag: "01".into(),
                    length: "0+".into(),
                },
            ),
        ];
        for (body, fault) in cases {
            let error = parse_error(&with_crc(body));
            assert!(
                matches!(&error, VietQrError::TlvMalformed { fault: f, .. } if *f == fault),
                "{body:?}: {error:?}"
            );
            assert_eq!(error.code(), "QR_TLV_MALFORMED");
        }
    }

    #[test]
    fn malformed_nested_tlv_names_the_template() {
        // 38.01 claims 24 characters; 23 follow (the service code is left out so that the
        // lie runs past the end of template 38 instead of into 38.02).
        let lying_beneficiary = format!("0010{NAPAS_GUID}0124") + "00069704160109257678859";
        let error = parse_error(&replacing("38", &lying_beneficiary));
        assert_eq!(
            error,
            VietQrError::NestedTlvMalformed {
                template: "38",
                // 000201 010212 3847 0010A000000727 | 01..: 12 + 4 + 14 characters in.
                offset: 30,
                fault: TlvFault::ValueRunsPastEnd {
                    tag: "01".into(),
                    declared: 24,
                    remaining: 23
                }
            }
        );
        assert_eq!(error.code(), "QR_NESTED_TLV_MALFORMED");

        let lying_bin = merchant_account(NAPAS_GUID, "00079704160109257678859", Some("QRIBFTTA"));
        assert!(matches!(
            parse_error(&replacing("38", &lying_bin)),
            VietQrError::NestedTlvMalformed {
                template: "38.01",
                ..
            }
        ));
        assert!(matches!(
            parse_error(&replacing("62", "0812Chuyen tien")),
            VietQrError::NestedTlvMalformed {
                template: "62",
                fault: TlvFault::ValueRunsPastEnd { .. },
                ..
            }
        ));
        assert!(matches!(
            parse_error(&replacing("62", "08ABChuyen tien")),
            VietQrError::NestedTlvMalformed {
                template: "62",
                fault: TlvFault::LengthNotNumeric { .. },
                ..
            }
        ));
    }

    #[test]
    fn missing_fields_are_named() {
        for tag in ["01", "38", "53", "58"] {
            assert_eq!(
                parse_error(&without(tag)),
                VietQrError::MissingField { field: tag },
            );
        }
        assert_eq!(
            parse_error(&with_crc(&tlv("01", "12"))),
            VietQrError::MissingField { field: "00" }
        );
        let account_only = beneficiary("970416", "257678859");
        for (merchant, field) in [
            (tlv("01", &account_only), "38.00"),
            (tlv("00", NAPAS_GUID), "38.01"),
            (
                merchant_account(NAPAS_GUID, &tlv("01", "257678859"), None),
                "38.01.00",
            ),
            (
                merchant_account(NAPAS_GUID, &tlv("00", "970416"), None),
                "38.01.01",
            ),
        ] {
            let error = parse_error(&replacing("38", &merchant));
            assert_eq!(error, VietQrError::MissingField { field });
            assert_eq!(error.code(), "QR_MISSING_FIELD");
            assert!(error.to_string().contains(field));
        }
    }

    #[test]
    fn unknown_sub_fields_of_the_merchant_account_are_refused() {
        let mut merchant = valid_fields()[2].1.clone();
        merchant += &tlv("03", "X");
        let error = parse_error(&replacing("38", &merchant));
        assert_eq!(
            error,
            VietQrError::UnexpectedField {
                field: "38.03".into()
            }
        );
        assert_eq!(error.code(), "QR_UNEXPECTED_FIELD");

        let beneficiary_with_extra = beneficiary("970416", "257678859") + &tlv("02", "X");
        let merchant = merchant_account(NAPAS_GUID, &beneficiary_with_extra, None);
        assert_eq!(
            parse_error(&replacing("38", &merchant)),
            VietQrError::UnexpectedField {
                field: "38.01.02".into()
            }
        );
    }

    #[test]
    fn each_napas_rule_has_its_own_code() {
        let beneficiary_of = |bin: &str, account: &str| {
            merchant_account(NAPAS_GUID, &beneficiary(bin, account), Some("QRIBFTTA"))
        };
        let cases: Vec<(String, &str)> = vec![
            (replacing("00", "02"), "QR_UNSUPPORTED_VERSION"),
            (replacing("01", "13"), "QR_INVALID_INITIATION"),
            (replacing("01", "1"), "QR_INVALID_INITIATION"),
            (
                replacing(
                    "38",
                    &merchant_account("A000000728", &beneficiary("970416", "1234567"), None),
                ),
                "QR_WRONG_GUID",
            ),
            (
                replacing(
                    "38",
                    &merchant_account("a000000727", &beneficiary("970416", "1234567"), None),
                ),
                "QR_WRONG_GUID",
            ),
            (
                replacing("38", &beneficiary_of("97041", "257678859")),
                "QR_INVALID_BIN",
            ),
            (
                replacing("38", &beneficiary_of("97041A", "257678859")),
                "QR_INVALID_BIN",
            ),
            (
                replacing("38", &beneficiary_of("970416", &"1".repeat(20))),
                "QR_INVALID_ACCOUNT",
            ),
            (
                replacing("38", &beneficiary_of("970416", "2576-78859")),
                "QR_INVALID_ACCOUNT",
            ),
            (
                replacing(
                    "38",
                    &merchant_account(
                        NAPAS_GUID,
                        &beneficiary("970416", "257678859"),
                        Some("QRPUSH"),
                    ),
                ),
                "QR_UNKNOWN_SERVICE",
            ),
            (replacing("54", "1000.5"), "QR_INVALID_AMOUNT"),
            (replacing("54", "-1000"), "QR_INVALID_AMOUNT"),
            (replacing("54", "0"), "QR_INVALID_AMOUNT"),
            (replacing("54", "01000"), "QR_INVALID_AMOUNT"),
            (replacing("54", "10000000000000"), "QR_INVALID_AMOUNT"),
            (replacing("53", "840"), "QR_INVALID_CURRENCY"),
            (replacing("58", "vn"), "QR_INVALID_COUNTRY"),
            (
                replacing("62", &tlv("08", &"a".repeat(26))),
                "QR_PURPOSE_TOO_LONG",
            ),
            (
                replacing("62", &tlv("08", "Thanh toan #1")),
                "QR_INVALID_PURPOSE",
            ),
            (
                replacing("62", &tlv("08", "Thanh toán")),
                "QR_INVALID_PURPOSE",
            ),
        ];
        for (payload, code) in cases {
            let error = parse_error(&payload);
            assert_eq!(error.code(), code, "{payload}: {error}");
        }
    }

    #[test]
    fn amount_limits_when_parsing() {
        let largest = VietQr::parse(&replacing("54", "9999999999999")).unwrap();
        assert_eq!(largest.amount(), Some(9_999_999_999_999));
        assert_eq!(
            VietQr::parse(&replacing("54", "1")).unwrap().amount(),
            Some(1)
        );
        assert_eq!(
            parse_error(&replacing("54", "0")),
            VietQrError::InvalidAmount {
                found: "0".into(),
                rule: "must be greater than zero"
            }
        );
    }

    #[test]
    fn purpose_limits_when_parsing() {
        let longest = "a".repeat(PURPOSE_MAX_LEN);
        let qr = VietQr::parse(&replacing("62", &tlv("08", &longest))).unwrap();
        assert_eq!(qr.purpose(), Some(longest.as_str()));
        assert_eq!(
            parse_error(&replacing("62", &tlv("08", &"a".repeat(26)))),
            VietQrError::PurposeTooLong { length: 26 }
        );
    }

    #[test]
    fn new_builds_our_static_and_dynamic_codes() {
        let sticker = VietQr::new(
            Initiation::Static,
            "970416",
            "257678859",
            Service::Account,
            None,
            None,
        )
        .unwrap();
        assert_eq!(sticker.encode(), vector("xuannghia-acb-static").payload);

        let intent = VietQr::new(
            Initiation::Dynamic,
            "970416",
            "257678859",
            Service::Account,
            Some(1000),
            Some("Chuyển tiền"),
        )
        .unwrap();
        assert_eq!(intent.encode(), vector("xuannghia-acb-dyn-1000").payload);

        let card = VietQr::new(
            Initiation::Static,
            "970403",
            "9704031101234567",
            Service::Card,
            None,
            None,
        )
        .unwrap();
        assert_eq!(card.encode(), vector("napas-style-static-card").payload);
    }

    #[test]
    fn new_folds_and_cuts_the_purpose() {
        let qr = VietQr::new(
            Initiation::Dynamic,
            "970415",
            "113366668888",
            Service::Account,
            Some(79_000),
            Some("Ủng hộ quỹ vắc-xin, cho trẻ em toàn xã!"),
        )
        .unwrap();
        assert_eq!(qr.purpose(), Some("Ung ho quy vac xin cho tr"));
        assert_eq!(VietQr::parse(&qr.encode()).unwrap(), qr);
    }

    #[test]
    fn new_enforces_our_stricter_rules() {
        let new = |bin: &str, account: &str, service, amount, purpose| {
            VietQr::new(Initiation::Dynamic, bin, account, service, amount, purpose)
                .expect_err("must be refused")
        };
        use Service::{Account, Card};
        assert_eq!(
            new("97041", "257678859", Account, None, None).code(),
            "QR_INVALID_BIN"
        );
        assert_eq!(
            new("9704160", "257678859", Account, None, None).code(),
            "QR_INVALID_BIN"
        );
        for (account, service, rule) in [
            ("VQRQABRLS0448", Account, "must be digits only"),
            ("12345", Account, "an account number has 6 to 19 digits"),
            (
                "12345678901234567890",
                Account,
                "an account number has 6 to 19 digits",
            ),
            ("970403110123456", Card, "a card number has 16 to 19 digits"),
            (
                "97040311012345678901",
                Card,
                "a card number has 16 to 19 digits",
            ),
        ] {
            assert_eq!(
                new("970416", account, service, None, None),
                VietQrError::InvalidAccount {
                    found: account.into(),
                    rule
                }
            );
        }
        assert_eq!(
            new("970416", "123456", Account, Some(0), None).code(),
            "QR_INVALID_AMOUNT"
        );
        assert_eq!(
            new("970416", "123456", Account, Some(10_000_000_000_000), None).code(),
            "QR_INVALID_AMOUNT"
        );
        assert_eq!(
            new("970416", "123456", Account, None, Some("!!! ...")),
            VietQrError::InvalidPurpose {
                found: "!!! ...".into(),
                rule: "has no letters or digits to keep"
            }
        );
        assert!(VietQr::new(
            Initiation::Static,
            "970416",
            "123456",
            Account,
            Some(9_999_999_999_999),
            None
        )
        .is_ok());
    }

    /// Each code must be produced by at least one case above; this lists one per code so a
    /// new variant without a test fails here.
    #[test]
    fn every_error_code_is_reachable() {
        let produced: BTreeSet<&str> = [
            parse_error(&"0".repeat(600)),
            parse_error("000201"),
            parse_error("0002016304XYZW"),
            parse_error(&vector("neg-bad-crc").payload),
            parse_error(&with_crc("00020101")),
            parse_error(&replacing("62", "0899")),
            parse_error(&without("53")),
            parse_error(&replacing("38", &(valid_fields()[2].1.clone() + "0301X"))),
            parse_error(&replacing("00", "02")),
            parse_error(&replacing("01", "10")),
            parse_error(&replacing(
                "38",
                &merchant_account("A000000000", "0006970416", None),
            )),
            parse_error(&replacing(
                "38",
                &merchant_account(NAPAS_GUID, &beneficiary("9704", "1"), None),
            )),
            parse_error(&replacing(
                "38",
                &merchant_account(NAPAS_GUID, &beneficiary("970416", "a_b"), None),
            )),
            parse_error(&replacing(
                "38",
                &merchant_account(NAPAS_GUID, &beneficiary("970416", "1"), Some("X")),
            )),
            parse_error(&replacing("54", "1e3")),
            parse_error(&replacing("53", "978")),
            parse_error(&replacing("58", "US")),
            parse_error(&replacing("62", &tlv("08", &"x".repeat(30)))),
            parse_error(&replacing("62", &tlv("08", "a+b"))),
        ]
        .iter()
        .map(VietQrError::code)
        .collect();
        let all: BTreeSet<&str> = [
            "QR_PAYLOAD_TOO_LONG",
            "QR_CRC_MISSING",
            "QR_CRC_MALFORMED",
            "QR_CRC_MISMATCH",
            "QR_TLV_MALFORMED",
            "QR_NESTED_TLV_MALFORMED",
            "QR_MISSING_FIELD",
            "QR_UNEXPECTED_FIELD",
            "QR_UNSUPPORTED_VERSION",
            "QR_INVALID_INITIATION",
            "QR_WRONG_GUID",
            "QR_INVALID_BIN",
            "QR_INVALID_ACCOUNT",
            "QR_UNKNOWN_SERVICE",
            "QR_INVALID_AMOUNT",
            "QR_INVALID_CURRENCY",
            "QR_INVALID_COUNTRY",
            "QR_PURPOSE_TOO_LONG",
            "QR_INVALID_PURPOSE",
        ]
        .into_iter()
        .collect();
        assert_eq!(produced, all);
    }

    fn our_code() -> impl Strategy<
        Value = (
            Initiation,
            String,
            String,
            Service,
            Option<u64>,
            Option<String>,
        ),
    > {
        let service_and_account = prop_oneof![
            "[0-9]{6,19}".prop_map(|account| (Service::Account, account)),
            "[0-9]{16,19}".prop_map(|account| (Service::Card, account)),
        ];
        (
            prop_oneof![Just(Initiation::Static), Just(Initiation::Dynamic)],
            "[0-9]{6}",
            service_and_account,
            proptest::option::of(1..=9_999_999_999_999u64),
            proptest::option::of("[a-zA-Z0-9 àáạảãăằắâầấđèéêềếìíòóôồốơờớùúưừứỳýĐƯ#.,!-]{0,40}"),
        )
            .prop_map(|(initiation, bin, (service, account), amount, purpose)| {
                (initiation, bin, account, service, amount, purpose)
            })
    }

    proptest! {
        #[test]
        fn encode_then_parse_gives_back_the_same_code(
            (initiation, bin, account, service, amount, purpose) in our_code()
        ) {
            let built = VietQr::new(initiation, &bin, &account, service, amount, purpose.as_deref());
            let expected_purpose = purpose.as_deref().map(purpose_text);
            if expected_purpose.as_deref() == Some("") {
                prop_assert_eq!(built.map_err(|e| e.code()), Err("QR_INVALID_PURPOSE"));
                return Ok(());
            }
            let qr = built.unwrap();
            let payload = qr.encode();
            prop_assert!(payload.chars().count() <= MAX_PAYLOAD_LEN);
            let parsed = VietQr::parse(&payload).unwrap();
            prop_assert_eq!(parsed.initiation(), initiation);
            prop_assert_eq!(parsed.bin(), bin.as_str());
            prop_assert_eq!(parsed.account(), account.as_str());
            prop_assert_eq!(parsed.service(), Some(service));
            prop_assert_eq!(parsed.amount(), amount);
            prop_assert_eq!(parsed.purpose(), expected_purpose.as_deref());
            prop_assert_eq!(parsed.encode(), payload);
            prop_assert_eq!(parsed, qr);
        }

        /// Garbage with a correct CRC gets past the first check and exercises the TLV reader,
        /// including multi-byte characters: it must answer with an error, never panic.
        #[test]
        fn parse_never_panics_on_garbage_with_a_valid_crc(body in "\\PC{0,120}") {
            let _ = VietQr::parse(&with_crc(&body));
            let _ = VietQr::parse(&body);
        }

        /// One character of a real payload replaced, with the CRC both left stale and fixed up,
        /// so the damage reaches the TLV reader and the field rules too.
        #[test]
        fn parse_never_panics_on_damaged_real_payloads(
            index in 0..13usize,
            position in 0..200usize,
            replacement in "\\PC",
        ) {
            let payload = &vectors()[index].payload;
            let mut characters: Vec<char> = payload.chars().collect();
            let position = position % characters.len();
            characters.splice(position..=position, replacement.chars());
            let damaged: String = characters.iter().collect();
            let _ = VietQr::parse(&damaged);
            let body_len = characters.len().saturating_sub(CRC_FIELD_LEN);
            let body: String = characters[..body_len].iter().collect();
            let _ = VietQr::parse(&with_crc(&body));
        }
    }
}
