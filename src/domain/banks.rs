//! The NAPAS member banks a VietQR code can name, bundled with the program.
//!
//! `banks_vietqr.csv` is the api.vietqr.io bank list (65 banks) as shipped in the project's
//! shared vectors; it is compiled in so that validating a BIN needs no network and no table.

use std::sync::LazyLock;

const BANKS_CSV: &str = include_str!("banks_vietqr.csv");

/// A bank of the NAPAS list. `bin` is the 6-digit acquirer id VietQR puts in tag 38.01.00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bank {
    pub bin: String,
    pub code: String,
    pub short_name: String,
    pub name: String,
    pub swift_code: Option<String>,
    /// Whether the list marks the bank as receiving VietQR (NAPAS 247) transfers.
    pub transfer_supported: bool,
    /// Whether the list marks the bank as answering account-holder look-ups.
    pub lookup_supported: bool,
}

static BANKS: LazyLock<Vec<Bank>> = LazyLock::new(|| parse_banks(BANKS_CSV));

/// Every bundled bank, in the list's order.
pub fn banks() -> &'static [Bank] {
    &BANKS
}

/// The bank with this BIN, if it is in the bundled list.
pub fn find_bank(bin: &str) -> Option<&'static Bank> {
    BANKS.iter().find(|bank| bank.bin == bin)
}

/// Reads the bundled file. It is part of the source, so a malformed line is a build mistake
/// that the unit tests catch; it panics rather than silently dropping a bank.
fn parse_banks(csv: &str) -> Vec<Bank> {
    let mut lines = csv.lines().filter(|line| !line.trim().is_empty());
    let header = lines.next().expect("bank list has a header");
    assert_eq!(
        header.trim_end(),
        "vietqr_id,code,bin,short_name,name,swift_code,transfer_supported,lookup_supported"
    );
    lines
        .map(|line| {
            let fields = split_csv_line(line.trim_end());
            let [_, code, bin, short_name, name, swift_code, transfer, lookup] = &fields[..] else {
                panic!("bank list line has {} fields: {line}", fields.len());
            };
            Bank {
                bin: bin.clone(),
                code: code.clone(),
                short_name: short_name.clone(),
                name: name.clone(),
                swift_code: (!swift_code.is_empty()).then(|| swift_code.clone()),
                transfer_supported: transfer == "1",
                lookup_supported: lookup == "1",
            }
        })
        .collect()
}

/// Splits one RFC 4180 line: fields may be quoted (to hold commas), `""` is a quote inside.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_whole_list_is_bundled_with_unique_six_digit_bins() {
        assert_eq!(banks().len(), 65);
        let bins: HashSet<&str> = banks().iter().map(|b| b.bin.as_str()).collect();
        assert_eq!(bins.len(), banks().len());
        assert!(banks()
            .iter()
            .all(|b| b.bin.len() == 6 && b.bin.bytes().all(|c| c.is_ascii_digit())));
    }

    #[test]
    fn finds_banks_by_bin() {
        let vietcombank = find_bank("970436").unwrap();
        assert_eq!(vietcombank.short_name, "Vietcombank");
        assert_eq!(vietcombank.swift_code.as_deref(), Some("BFTVVNVX"));
        assert!(vietcombank.transfer_supported);
        assert_eq!(find_bank("970415").unwrap().short_name, "VietinBank");
        assert!(find_bank("999999").is_none());
        assert!(find_bank("").is_none());
    }

    #[test]
    fn quoted_fields_keep_their_commas() {
        let citibank = find_bank("533948").unwrap();
        assert_eq!(citibank.name, "Ngân hàng Citibank, N.A. - Chi nhánh Hà Nội");
        assert_eq!(citibank.swift_code, None);
        assert_eq!(
            split_csv_line(r#"a,"b ""c"", d",e"#),
            ["a", r#"b "c", d"#, "e"]
        );
    }
}
