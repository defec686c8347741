//! The reminder a household gets for its children's unpaid charges of a collection run: who
//! gets one message, and its Vietnamese text.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::domain::number_words::grouped_dong;

/// One pupil's unpaid part of a run, with what a parent needs to pay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwingPupil {
    pub pupil_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub class_name: String,
    pub household_id: Option<Uuid>,
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
    /// The run's fee items still (partly) unpaid, in posting order.
    pub items: Vec<String>,
    pub owed: i64,
    /// The pupil's payment reference for the run (the transfer's memo) and where it goes.
    pub payment: Option<PaymentDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDetails {
    pub reference: String,
    /// The VietQR payload; a gateway that sends pictures can draw it.
    pub qr_payload: String,
    pub bank: String,
    pub account_number: String,
}

/// Who one message goes to: the pupils' household when they name one, else the guardian's
/// phone, else the pupil alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recipient {
    Household(Uuid),
    Phone(String),
    Pupil(Uuid),
}

impl Recipient {
    pub fn of(pupil: &OwingPupil) -> Self {
        match (&pupil.household_id, &pupil.guardian_phone) {
            (Some(household), _) => Recipient::Household(*household),
            (None, Some(phone)) => Recipient::Phone(phone.clone()),
            (None, None) => Recipient::Pupil(pupil.pupil_id),
        }
    }
}

/// The pupils of each recipient, recipients and pupils in a stable order (pupil code).
pub fn by_recipient(mut pupils: Vec<OwingPupil>) -> BTreeMap<Recipient, Vec<OwingPupil>> {
    pupils.sort_by(|a, b| a.code.cmp(&b.code));
    let mut groups: BTreeMap<Recipient, Vec<OwingPupil>> = BTreeMap::new();
    for pupil in pupils {
        groups.entry(Recipient::of(&pupil)).or_default().push(pupil);
    }
    groups
}

/// The text: "Kính gửi phụ huynh em …, khoản thu … còn … đồng, quét mã QR …", one clause per
/// child, signed with the school's name. Amounts are written as on receipts (1.250.000).
pub fn reminder_text(school_name: &str, run_name: &str, pupils: &[OwingPupil]) -> String {
    let clauses: Vec<String> = pupils
        .iter()
        .map(|pupil| {
            let mut clause = format!(
                "em {} (lớp {}), khoản thu {} ({}) còn {} đồng",
                pupil.full_name,
                pupil.class_name,
                run_name,
                pupil.items.join(", "),
                grouped_dong(pupil.owed)
            );
            if let Some(payment) = &pupil.payment {
                clause.push_str(&format!(
                    ", quét mã QR kèm theo hoặc chuyển khoản vào tài khoản {} {} với nội dung {}",
                    payment.bank, payment.account_number, payment.reference
                ));
            }
            clause
        })
        .collect();
    format!(
        "Kính gửi phụ huynh {}. Trân trọng, {school_name}.",
        clauses.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pupil(code: &str, name: &str, household: Option<Uuid>, phone: Option<&str>) -> OwingPupil {
        OwingPupil {
            pupil_id: Uuid::new_v4(),
            code: code.into(),
            full_name: name.into(),
            class_name: "3A".into(),
            household_id: household,
            guardian_name: None,
            guardian_phone: phone.map(str::to_owned),
            items: vec!["Tiền ăn bán trú".into(), "Bảo hiểm y tế".into()],
            owed: 1_284_520,
            payment: Some(PaymentDetails {
                reference: "MLAB12CD34".into(),
                qr_payload: "000201".into(),
                bank: "Vietcombank".into(),
                account_number: "1900123456".into(),
            }),
        }
    }

    #[test]
    fn the_text_names_the_child_the_run_the_amount_and_how_to_pay() {
        let text = reminder_text(
            "Trường Tiểu học Tức Tranh",
            "Tháng 9/2026",
            &[pupil("HS01", "Nguyễn Văn An", None, Some("0912345678"))],
        );
        assert_eq!(
            text,
            "Kính gửi phụ huynh em Nguyễn Văn An (lớp 3A), khoản thu Tháng 9/2026 (Tiền ăn bán \
             trú, Bảo hiểm y tế) còn 1.284.520 đồng, quét mã QR kèm theo hoặc chuyển khoản vào \
             tài khoản Vietcombank 1900123456 với nội dung MLAB12CD34. Trân trọng, Trường Tiểu \
             học Tức Tranh."
        );
    }

    #[test]
    fn a_household_gets_one_message_for_all_its_children() {
        let household = Uuid::new_v4();
        let groups = by_recipient(vec![
            pupil("HS02", "Lê Thị Bình", Some(household), Some("0912345678")),
            pupil("HS03", "Trần Văn Cường", None, Some("0912345678")),
            pupil("HS01", "Lê Văn An", Some(household), None),
            pupil("HS04", "Phạm Thị Dung", None, None),
        ]);
        assert_eq!(groups.len(), 3);
        let family = &groups[&Recipient::Household(household)];
        assert_eq!(
            family.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
            ["HS01", "HS02"]
        );
        assert!(groups.contains_key(&Recipient::Phone("0912345678".into())));
        let text = reminder_text("Trường", "Tháng 9", family);
        assert!(text.contains("em Lê Văn An (lớp 3A)") && text.contains("; em Lê Thị Bình"));
    }
}
