//! Reading a payload: CRC, TLV structure, then each NAPAS rule.

use super::*;

impl VietQr {
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

pub(super) fn check_bin(bin: &str) -> Result<(), VietQrError> {
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
