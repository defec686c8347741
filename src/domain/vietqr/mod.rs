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
//!
//! Strict in what we write, liberal in what we read. [`VietQr::new`] and [`VietQr::encode`]
//! keep the table's rules. [`VietQr::read`] also accepts what EMVCo permits and real codes
//! carry, and says so with a [`QrWarning`]: a purpose with punctuation or Vietnamese letters, or
//! longer than 25 characters (up to the 99 a value holds); an amount with a zero fraction
//! ("10000.00", read as whole đồng); lengths counted in UTF-8 bytes. A non-zero fraction, control
//! characters in the purpose, and anything about the receiving account stay errors. A code with
//! no tag 38 but another scheme's merchant account template (02-51, e.g. VNPAY-QR in 26) is
//! refused with [`VietQrError::NotABankTransfer`], which carries what could be read of it. A
//! code read with warnings re-encodes without them (whole amount, lengths in characters).

use std::fmt;

use crc::{Crc, CRC_16_IBM_3740};

use super::text::{purpose_text, PURPOSE_MAX_LEN};

mod parse;
#[cfg(test)]
mod tests;

use parse::{check_amount_value, check_bin};

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor); the `crc`
/// catalogue lists it under its registered name CRC-16/IBM-3740.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// EMVCo caps a whole payload at 512 characters; checking it first also bounds parsing work.
pub const MAX_PAYLOAD_LEN: usize = 512;
/// NAPAS registered application identifier, the value of tag 38.00.
pub const NAPAS_GUID: &str = "A000000727";
/// VNPAY's registered application identifier, found in tag 26 of VNPAY-QR merchant codes.
pub const VNPAY_GUID: &str = "A000000775";
/// ISO 4217 numeric code of the Vietnamese đồng, the only currency VietQR carries.
pub const CURRENCY_VND: &str = "704";
pub const COUNTRY_VN: &str = "VN";
/// Longest amount tag 54 may hold.
pub const AMOUNT_MAX_DIGITS: usize = 13;
/// The largest amount tag 54 can hold: 13 nines.
pub const MAX_QR_AMOUNT: i64 = 9_999_999_999_999;
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
    pub const MERCHANT_NAME: u8 = 59;
    pub const MERCHANT_CITY: u8 = 60;
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
    #[error("purpose {found:?} is invalid: {rule}")]
    InvalidPurpose { found: String, rule: &'static str },
    #[error("{0}")]
    NotABankTransfer(Box<OtherScheme>),
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
            VietQrError::InvalidPurpose { .. } => "QR_INVALID_PURPOSE",
            VietQrError::NotABankTransfer(_) => "QR_NOT_A_BANK_TRANSFER",
        }
    }
}

/// Something a payload does that EMVCo permits and real codes do, but that our own codes never
/// do. The code is read anyway; the warning says what was unusual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrWarning {
    /// The purpose (62.08) holds characters other than ASCII letters, digits and spaces
    /// (punctuation, Vietnamese letters); `characters` lists each once, in order.
    PurposeUnusualCharacters { characters: String },
    /// The purpose is longer than the 25 characters NAPAS gives it.
    PurposeLong { length: usize },
    /// The amount (54) has a fraction of zeros, e.g. "10000.00"; VND has no minor unit.
    AmountZeroFraction { found: String },
    /// The lengths of a TLV list (`place`: the payload, or template 38, 38.01, 62) count UTF-8
    /// bytes rather than characters.
    LengthsCountedInBytes { place: &'static str },
}

impl QrWarning {
    /// Stable, machine-readable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            QrWarning::PurposeUnusualCharacters { .. } => "QR_PURPOSE_UNUSUAL_CHARACTERS",
            QrWarning::PurposeLong { .. } => "QR_PURPOSE_LONG",
            QrWarning::AmountZeroFraction { .. } => "QR_AMOUNT_ZERO_FRACTION",
            QrWarning::LengthsCountedInBytes { .. } => "QR_LENGTHS_COUNTED_IN_BYTES",
        }
    }
}

impl fmt::Display for QrWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QrWarning::PurposeUnusualCharacters { characters } => write!(
                f,
                "the purpose (tag 62.08) contains {characters:?}, outside the ASCII letters, \
                 digits and spaces NAPAS lists; some banking apps drop or refuse such characters"
            ),
            QrWarning::PurposeLong { length } => write!(
                f,
                "the purpose (tag 62.08) is {length} characters long; NAPAS allows \
                 {PURPOSE_MAX_LEN}, so some banking apps cut it"
            ),
            QrWarning::AmountZeroFraction { found } => write!(
                f,
                "the amount (tag 54) {found:?} has a zero fraction; VND has no minor unit, so \
                 it was read as whole đồng"
            ),
            QrWarning::LengthsCountedInBytes { place } => write!(
                f,
                "the lengths in {} count UTF-8 bytes, not characters as EMVCo says; read by bytes",
                match *place {
                    "the payload" => "the payload".to_owned(),
                    template => format!("template {template}"),
                }
            ),
        }
    }
}

/// A payload read with [`VietQr::read`]: the code and what was unusual about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadQr {
    pub qr: VietQr,
    pub warnings: Vec<QrWarning>,
}

/// A merchant account template (tags 02-51) of a code from another scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantAccountTemplate {
    pub tag: u8,
    /// Sub-field 00, the scheme's globally unique identifier, when it can be read.
    pub guid: Option<String>,
}

impl MerchantAccountTemplate {
    /// The scheme a known GUID belongs to.
    pub fn scheme(&self) -> Option<&'static str> {
        match self.guid.as_deref()? {
            NAPAS_GUID => Some("NAPAS VietQR"),
            VNPAY_GUID => Some("VNPAY-QR"),
            _ => None,
        }
    }
}

/// What could be read of a code that is not a NAPAS VietQR bank transfer (no tag 38): its
/// merchant account templates, and the amount, currency (53), purpose (62.08), merchant name
/// (59) and city (60) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherScheme {
    pub merchant_accounts: Vec<MerchantAccountTemplate>,
    /// Whole đồng when the amount reads as VietQR's would, otherwise the text as written.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub purpose: Option<String>,
    pub merchant_name: Option<String>,
    pub merchant_city: Option<String>,
}

impl fmt::Display for OtherScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let templates: Vec<String> = self
            .merchant_accounts
            .iter()
            .map(|t| match (&t.guid, t.scheme()) {
                (Some(guid), Some(scheme)) => format!("{:02} ({scheme}, {guid})", t.tag),
                (Some(guid), None) => format!("{:02} ({guid})", t.tag),
                (None, _) => format!("{:02}", t.tag),
            })
            .collect();
        write!(
            f,
            "this code is not a VietQR bank transfer: it has no NAPAS merchant account (tag 38), \
             only merchant account template {}; pay it with the app of its scheme",
            templates.join(", ")
        )
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
}

/// Appends one TLV field. Callers only pass values whose length the constructors and the
/// parser have bounded to 1..=99 characters.
fn write_tlv(out: &mut String, tag: u8, value: &str) {
    out.push_str(&format!("{tag:02}{:02}{value}", value.chars().count()));
}
