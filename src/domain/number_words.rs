//! Amounts read aloud in Vietnamese, as the vendor's phone says them ("Đã nhận năm mươi nghìn
//! đồng"). Northern usage: "linh" for a zero ten ("một trăm linh năm"), "mốt" for a one after
//! twenty and up ("hai mươi mốt"), "tư" for a four after twenty and up ("hai mươi tư"), "lăm"
//! for a five after any ten ("mười lăm"), and "không trăm" wherever a group of three digits
//! follows a bigger one ("một nghìn không trăm linh năm").

const DIGITS: [&str; 10] = [
    "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín",
];

/// One thousand, one million: each scale below "tỷ", which repeats ("nghìn tỷ", "triệu tỷ").
const SCALES: [(u64, &str); 3] = [
    (1_000_000_000, "tỷ"),
    (1_000_000, "triệu"),
    (1_000, "nghìn"),
];

/// `number` in Vietnamese words: 50 000 → "năm mươi nghìn".
pub fn number_words(number: u64) -> String {
    if number == 0 {
        return DIGITS[0].to_owned();
    }
    let mut words = Vec::new();
    push_words(number, true, &mut words);
    words.join(" ")
}

/// What the stall's phone says when a payment of `amount` đồng arrives.
pub fn received_announcement(amount: u64) -> String {
    format!("Đã nhận {} đồng", number_words(amount))
}

/// Đồng in digits with a dot between thousands, as Vietnamese receipts and messages write
/// them: 1250000 → "1.250.000".
pub fn grouped_dong(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    if amount < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// The market board's name for a stall: a stall written as a bare number ("12") is "Quầy 12",
/// one written with its own word ("Sạp 5") stays as written, and a payee without a stall goes
/// by its code ("Quầy V042").
pub fn stall_label(stall: Option<&str>, code: &str) -> String {
    match stall.map(str::trim).filter(|stall| !stall.is_empty()) {
        Some(stall) if !stall.starts_with(|c: char| c.is_ascii_digit()) => stall.to_owned(),
        Some(number) => format!("Quầy {number}"),
        None => format!("Quầy {code}"),
    }
}

/// What the market hall's board says when a stall is paid: "Quầy 12 đã nhận ba mươi lăm nghìn
/// đồng" (the stall and the amount, never the payer).
pub fn board_announcement(stall_label: &str, amount: u64) -> String {
    format!("{stall_label} đã nhận {} đồng", number_words(amount))
}

/// Appends the words of `number` (> 0). `leading` is false when a bigger part was read before
/// it, which makes its hundreds spoken even when they are zero.
fn push_words(number: u64, leading: bool, words: &mut Vec<&'static str>) {
    for (scale, name) in SCALES {
        if number >= scale {
            push_words(number / scale, leading, words);
            words.push(name);
            let rest = number % scale;
            if rest > 0 {
                push_words(rest, false, words);
            }
            return;
        }
    }
    push_hundreds(number as usize, leading, words);
}

/// A group of at most three digits (1 to 999).
fn push_hundreds(group: usize, leading: bool, words: &mut Vec<&'static str>) {
    let (hundreds, tens, units) = (group / 100, group / 10 % 10, group % 10);
    let hundreds_spoken = hundreds > 0 || !leading;
    if hundreds_spoken {
        words.extend([DIGITS[hundreds], "trăm"]);
    }
    match tens {
        0 if units == 0 => {}
        0 if hundreds_spoken => words.extend(["linh", DIGITS[units]]),
        0 => words.push(DIGITS[units]),
        1 => {
            words.push("mười");
            match units {
                0 => {}
                5 => words.push("lăm"),
                _ => words.push(DIGITS[units]),
            }
        }
        _ => {
            words.extend([DIGITS[tens], "mươi"]);
            match units {
                0 => {}
                1 => words.push("mốt"),
                4 => words.push("tư"),
                5 => words.push("lăm"),
                _ => words.push(DIGITS[units]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grouped_dong_puts_dots_between_thousands() {
        assert_eq!(super::grouped_dong(0), "0");
        assert_eq!(super::grouped_dong(999), "999");
        assert_eq!(super::grouped_dong(1_250_000), "1.250.000");
        assert_eq!(super::grouped_dong(-20_000), "-20.000");
    }

    use super::*;
    use unicode_normalization::UnicodeNormalization;

    #[test]
    fn the_board_names_the_stall_and_the_amount_only() {
        assert_eq!(stall_label(Some("12"), "V042"), "Quầy 12");
        assert_eq!(stall_label(Some(" Sạp 5 "), "V042"), "Sạp 5");
        assert_eq!(stall_label(Some(" "), "V042"), "Quầy V042");
        assert_eq!(stall_label(None, "V042"), "Quầy V042");
        assert_eq!(
            board_announcement("Quầy 12", 35_000),
            "Quầy 12 đã nhận ba mươi lăm nghìn đồng"
        );
    }

    #[track_caller]
    fn reads(number: u64, expected: &str) {
        assert_eq!(number_words(number), expected, "{number}");
    }

    #[test]
    fn units_and_tens() {
        reads(0, "không");
        reads(1, "một");
        reads(5, "năm");
        reads(10, "mười");
        reads(11, "mười một");
        reads(14, "mười bốn");
        reads(15, "mười lăm");
        reads(20, "hai mươi");
        reads(21, "hai mươi mốt");
        reads(24, "hai mươi tư");
        reads(25, "hai mươi lăm");
        reads(99, "chín mươi chín");
    }

    #[test]
    fn hundreds_with_linh_for_a_zero_ten() {
        reads(100, "một trăm");
        reads(101, "một trăm linh một");
        reads(104, "một trăm linh bốn");
        reads(105, "một trăm linh năm");
        reads(110, "một trăm mười");
        reads(115, "một trăm mười lăm");
        reads(999, "chín trăm chín mươi chín");
    }

    #[test]
    fn thousands_millions_and_billions() {
        reads(1_000, "một nghìn");
        reads(1_005, "một nghìn không trăm linh năm");
        reads(1_050, "một nghìn không trăm năm mươi");
        reads(21_000, "hai mươi mốt nghìn");
        reads(35_000, "ba mươi lăm nghìn");
        reads(50_000, "năm mươi nghìn");
        reads(105_000, "một trăm linh năm nghìn");
        reads(1_000_000, "một triệu");
        reads(1_000_005, "một triệu không trăm linh năm");
        reads(1_500_000, "một triệu năm trăm nghìn");
        reads(2_024_000, "hai triệu không trăm hai mươi tư nghìn");
        reads(1_000_000_000, "một tỷ");
        reads(2_500_000_000, "hai tỷ năm trăm triệu");
        reads(1_000_000_000_000, "một nghìn tỷ");
        reads(1_000_000_000_000_000, "một triệu tỷ");
    }

    #[test]
    fn the_announcement_names_the_amount_in_dong() {
        assert_eq!(received_announcement(50_000), "Đã nhận năm mươi nghìn đồng");
        let text = received_announcement(1_234_567);
        assert_eq!(
            text,
            "Đã nhận một triệu hai trăm ba mươi tư nghìn năm trăm sáu mươi bảy đồng"
        );
        assert_eq!(text, text.nfc().collect::<String>(), "NFC text");
    }
}
