//! Reading a payload: CRC, TLV structure, then each NAPAS rule.
//!
//! Liberal in what it reads: what EMVCo permits and real codes carry (a purpose with
//! punctuation or Vietnamese letters, a longer purpose, an amount with a zero fraction, lengths
//! counted in UTF-8 bytes) is read and reported as a [`QrWarning`]; what would make the money or
//! the receiving account ambiguous stays an error.

use super::*;

impl VietQr {
    /// Decodes and validates a payload, dropping the warnings; see [`VietQr::read`].
    pub fn parse(payload: &str) -> Result<Self, VietQrError> {
        Self::read(payload).map(|read| read.qr)
    }

    /// Decodes and validates a payload: CRC first (so a damaged scan reports as damaged), then
    /// the TLV structure, then each NAPAS rule. The CRC is accepted in either case. What was
    /// unusual but readable comes back as warnings, in the order it was met.
    pub fn read(payload: &str) -> Result<ReadQr, VietQrError> {
        let mut warnings = Vec::new();
        let length = payload.chars().count();
        if length > MAX_PAYLOAD_LEN {
            return Err(VietQrError::PayloadTooLong { length });
        }
        let body = verify_crc(payload)?;

        let mut fields = read_tlv(body, 0, "the payload", &mut warnings)
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
        if !fields.iter().any(|f| f.field.tag == tag::MERCHANT_ACCOUNT) {
            if let Some(other) = other_scheme(&fields) {
                return Err(VietQrError::NotABankTransfer(Box::new(other)));
            }
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
        } = parse_merchant_account(&merchant_account, &mut warnings)?;

        let currency = take_field(&mut fields, tag::CURRENCY)
            .ok_or(VietQrError::MissingField { field: "53" })?;
        if currency.value != CURRENCY_VND {
            return Err(VietQrError::InvalidCurrency {
                found: currency.value,
            });
        }

        let amount = take_field(&mut fields, tag::AMOUNT)
            .map(|field| parse_amount(&field.value, &mut warnings))
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
            Some(additional_data) => parse_additional_data(&additional_data, &mut warnings)?,
            None => (None, Vec::new()),
        };

        let mut other_fields: Vec<TlvField> = fields.into_iter().map(|f| f.field).collect();
        other_fields.sort_by_key(|f| f.tag);

        let qr = Self {
            initiation,
            bin,
            account,
            service,
            amount,
            purpose,
            other_additional_data,
            other_fields,
        };
        Ok(ReadQr { qr, warnings })
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

/// What a TLV length counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Characters, as EMVCo says.
    Characters,
    /// UTF-8 bytes, as some issuers count when a value holds Vietnamese letters.
    Bytes,
}

/// Reads a TLV list by characters and, when that fails on a list holding non-ASCII text, by
/// UTF-8 bytes (with a warning naming `place`). A list that neither reading accepts reports the
/// fault of the character reading, the one the standard defines.
fn read_tlv(
    text: &str,
    base_offset: usize,
    place: &'static str,
    warnings: &mut Vec<QrWarning>,
) -> Result<Vec<LocatedField>, (usize, TlvFault)> {
    let by_characters = parse_tlv(text, base_offset, Count::Characters);
    if by_characters.is_ok() || text.is_ascii() {
        return by_characters;
    }
    match parse_tlv(text, base_offset, Count::Bytes) {
        Ok(fields) => {
            warnings.push(QrWarning::LengthsCountedInBytes { place });
            Ok(fields)
        }
        Err(_) => by_characters,
    }
}

/// Reads a TLV list completely, lengths counted as `count` says. `base_offset` is the character
/// position of `text` within the payload; offsets stay in characters whatever the lengths count.
/// Errors carry the offset of the offending field.
fn parse_tlv(
    text: &str,
    base_offset: usize,
    count: Count,
) -> Result<Vec<LocatedField>, (usize, TlvFault)> {
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
        let split = match count {
            Count::Characters => split_chars(after_header, declared),
            Count::Bytes => split_bytes(after_header, declared),
        };
        let Some((value, after_value)) = split else {
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
        let value_chars = value.chars().count();
        offset += 4 + value_chars;
        remaining -= 4 + value_chars;
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

/// Splits off the first `count` bytes, or `None` when there are fewer or the cut would fall
/// inside a character.
fn split_bytes(text: &str, count: usize) -> Option<(&str, &str)> {
    Some((text.get(..count)?, text.get(count..)?))
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
    warnings: &mut Vec<QrWarning>,
) -> Result<Vec<LocatedField>, VietQrError> {
    let fields = read_tlv(&template.value, template.value_offset, name, warnings).map_err(
        |(offset, fault)| VietQrError::NestedTlvMalformed {
            template: name,
            offset,
            fault,
        },
    )?;
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

fn parse_merchant_account(
    template: &LocatedValue,
    warnings: &mut Vec<QrWarning>,
) -> Result<MerchantAccount, VietQrError> {
    // NAPAS defines only these three; anything else means a code we would misread.
    let mut fields = parse_template(
        template,
        "38",
        |sub_tag| [tag::GUID, tag::BENEFICIARY, tag::SERVICE].contains(&sub_tag),
        warnings,
    )?;

    let guid =
        take_field(&mut fields, tag::GUID).ok_or(VietQrError::MissingField { field: "38.00" })?;
    if guid.value != NAPAS_GUID {
        return Err(VietQrError::WrongGuid { found: guid.value });
    }

    let beneficiary = take_located(&mut fields, tag::BENEFICIARY)
        .ok_or(VietQrError::MissingField { field: "38.01" })?;
    let mut beneficiary_fields = parse_template(
        &beneficiary,
        "38.01",
        |sub_tag| [tag::BIN, tag::ACCOUNT].contains(&sub_tag),
        warnings,
    )?;
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

fn parse_additional_data(
    template: &LocatedValue,
    warnings: &mut Vec<QrWarning>,
) -> Result<AdditionalData, VietQrError> {
    // EMVCo defines the other sub-fields (62.03 store label, 62.05 reference label, ...) and
    // leaves 50-99 to payment systems; wallets and NAPAS push codes fill some of them. None
    // changes where the money goes, so all are kept verbatim.
    let mut fields = parse_template(template, "62", |_| true, warnings)?;
    let purpose = take_field(&mut fields, tag::PURPOSE)
        .map(|field| check_purpose(field.value, warnings))
        .transpose()?;
    let mut others: Vec<TlvField> = fields.into_iter().map(|f| f.field).collect();
    others.sort_by_key(|f| f.tag);
    Ok((purpose, others))
}

/// Reads a purpose as another issuer wrote it: any printable text EMVCo's fields can carry
/// (punctuation, Vietnamese letters), up to the 99 characters a TLV value holds. What our own
/// codes would not carry is a warning; control and bidirectional-override characters, which
/// would change how the text is shown or logged, are refused.
fn check_purpose(purpose: String, warnings: &mut Vec<QrWarning>) -> Result<String, VietQrError> {
    if purpose.chars().any(is_hidden_control) {
        return Err(VietQrError::InvalidPurpose {
            found: purpose,
            rule: "control characters are not allowed",
        });
    }
    let mut unusual: Vec<char> = Vec::new();
    let safe = |c: char| c.is_ascii_alphanumeric() || c == ' ';
    for c in purpose.chars().filter(|&c| !safe(c)) {
        if !unusual.contains(&c) {
            unusual.push(c);
        }
    }
    if !unusual.is_empty() {
        warnings.push(QrWarning::PurposeUnusualCharacters {
            characters: unusual.into_iter().collect(),
        });
    }
    let length = purpose.chars().count();
    if length > PURPOSE_MAX_LEN {
        warnings.push(QrWarning::PurposeLong { length });
    }
    Ok(purpose)
}

/// Characters that are not shown as themselves: C0/C1 controls (line breaks, tabs, escapes)
/// and the Unicode bidirectional embeddings, overrides and isolates.
fn is_hidden_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub(super) fn check_bin(bin: &str) -> Result<(), VietQrError> {
    if bin.len() == 6 && bin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(VietQrError::InvalidBin {
            found: bin.to_owned(),
        })
    }
}

/// Reads tag 54. VND has no minor unit: a fraction of zeros ("10000.00") is read with a warning,
/// any other fraction is refused because the money would be ambiguous.
fn parse_amount(text: &str, warnings: &mut Vec<QrWarning>) -> Result<u64, VietQrError> {
    let Some((whole, fraction)) = text.split_once('.') else {
        return parse_whole_amount(text, text);
    };
    if text.len() > AMOUNT_MAX_DIGITS {
        return Err(VietQrError::InvalidAmount {
            found: text.to_owned(),
            rule: "more than 13 characters",
        });
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VietQrError::InvalidAmount {
            found: text.to_owned(),
            rule: "VND amounts are whole numbers written in digits only",
        });
    }
    if fraction.bytes().any(|b| b != b'0') {
        return Err(VietQrError::InvalidAmount {
            found: text.to_owned(),
            rule: "VND has no minor unit: a non-zero fraction would make the amount ambiguous",
        });
    }
    let amount = parse_whole_amount(whole, text)?;
    warnings.push(QrWarning::AmountZeroFraction {
        found: text.to_owned(),
    });
    Ok(amount)
}

/// The digits before any fraction; errors name the whole field `found`.
fn parse_whole_amount(text: &str, found: &str) -> Result<u64, VietQrError> {
    let invalid = |rule| VietQrError::InvalidAmount {
        found: found.to_owned(),
        rule,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
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
    if amount == 0 {
        return Err(invalid("must be greater than zero"));
    }
    Ok(amount)
}

pub(super) fn check_amount_value(amount: u64, text: &str) -> Result<(), VietQrError> {
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

/// What can be read of a code whose merchant account is not NAPAS VietQR (no tag 38, but one or
/// more of the merchant account templates 02-51 that EMVCo gives other schemes). Every field is
/// read on a best-effort basis: nothing here fails.
fn other_scheme(fields: &[LocatedField]) -> Option<OtherScheme> {
    let merchant_accounts: Vec<MerchantAccountTemplate> = fields
        .iter()
        .filter(|f| (2..=51).contains(&f.field.tag))
        .map(|f| MerchantAccountTemplate {
            tag: f.field.tag,
            guid: sub_field(&f.field.value, tag::GUID),
        })
        .collect();
    if merchant_accounts.is_empty() {
        return None;
    }
    let value = |wanted: u8| {
        fields
            .iter()
            .find(|f| f.field.tag == wanted)
            .map(|f| f.field.value.clone())
    };
    let amount = value(tag::AMOUNT)
        .map(|text| parse_amount(&text, &mut Vec::new()).map_or(text, |a| a.to_string()));
    let purpose = value(tag::ADDITIONAL_DATA).and_then(|data| sub_field(&data, tag::PURPOSE));
    Some(OtherScheme {
        merchant_accounts,
        amount,
        currency: value(tag::CURRENCY),
        purpose,
        merchant_name: value(tag::MERCHANT_NAME),
        merchant_city: value(tag::MERCHANT_CITY),
    })
}

/// One sub-field of a template, when the template can be read at all.
fn sub_field(template: &str, wanted: u8) -> Option<String> {
    read_tlv(template, 0, "", &mut Vec::new())
        .ok()?
        .into_iter()
        .find(|f| f.field.tag == wanted)
        .map(|f| f.field.value)
}
