//! A commune and what its people do, drawn from a seed: the script the simulation plays
//! through the service, and the ground truth of who paid how. Pure: no I/O, no clock.

use chrono::{Datelike, Days, Months, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Invented hamlet names in the style of a midland commune; the first holds the market.
const HAMLET_NAMES: [&str; 19] = [
    "Khe Cốc",
    "Làng Muông",
    "Đồng Tâm",
    "Gốc Cọ",
    "Thâm Găng",
    "Bãi Bông",
    "Tân Thái",
    "Tân Lập",
    "Đồng Danh",
    "Đồng Lạnh",
    "Khe Ván",
    "Đồng Hút",
    "Quyết Thắng",
    "Minh Hợp",
    "Làng Chè",
    "Đồng Tiến",
    "Gốc Mít",
    "Tân Tiến",
    "Đồng Kem",
];
const FAMILY_NAMES: [&str; 12] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Lý",
];
const MALE_NAMES: [&str; 10] = [
    "Văn An",
    "Đức Bình",
    "Văn Dũng",
    "Minh Hùng",
    "Hữu Nam",
    "Văn Quân",
    "Ngọc Sơn",
    "Đức Tuấn",
    "Văn Thắng",
    "Minh Khoa",
];
const FEMALE_NAMES: [&str; 10] = [
    "Thị Hoa",
    "Thị Lan",
    "Thu Hà",
    "Thị Hạnh",
    "Ngọc Linh",
    "Thị Mai",
    "Thu Phương",
    "Thị Thảo",
    "Thị Trang",
    "Hải Yến",
];

/// The banks residents hold accounts at (BINs of the VietQR list).
const RESIDENT_BANKS: [&str; 4] = ["970405", "970415", "970436", "970418"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    PayOs,
    Casso,
    SePay,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Households to create; about 3.7 residents each.
    pub households: usize,
    pub vendors: usize,
    pub schools: usize,
    /// The first simulated month (its first day) and how many months to play.
    pub first_month: NaiveDate,
    pub months: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hamlet {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Household {
    pub code: String,
    pub hamlet: usize,
    pub address: String,
    pub head: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BankAccount {
    pub bin: String,
    pub number: String,
    /// Registered with the commune (linked to its owner); an unregistered account's payments
    /// reach the ledger but nobody is known to have made them.
    pub registered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resident {
    pub code: String,
    pub household: usize,
    pub full_name: String,
    pub birth_year: i32,
    /// "female" or "male".
    pub gender: &'static str,
    /// The day the resident moved away, if they did during the simulation.
    pub left_on: Option<NaiveDate>,
    /// When consent to statistics linking was given, and withdrawn.
    pub consent_on: Option<NaiveDate>,
    pub withdrawn_on: Option<NaiveDate>,
    pub account: Option<BankAccount>,
    /// How likely the resident is to pay online at a market day.
    #[serde(skip)]
    pub online_propensity: f64,
}

impl Resident {
    pub fn consented_on(&self, day: NaiveDate) -> bool {
        self.consent_on.is_some_and(|given| given <= day)
            && self.withdrawn_on.is_none_or(|withdrawn| day < withdrawn)
    }

    pub fn lives_here_on(&self, day: NaiveDate) -> bool {
        self.left_on.is_none_or(|left| day <= left)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Payee {
    pub code: String,
    pub name: String,
    /// "vendor" or "school".
    pub kind: &'static str,
    /// The resident who runs the stall.
    pub owner: Option<usize>,
    pub provider: Provider,
    pub bank_bin: String,
    pub account_number: String,
    pub holder_name: String,
    /// Vendors that write down their day's cash sales.
    pub records_cash: bool,
}

/// How a payment's memo finds its payee.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Memo {
    /// The vendor's code, from the static QR on the stall.
    PayeeCode,
    /// The reference of the school charge with this index.
    Charge { charge: usize },
    /// A memo naming nothing: the money waits in suspense.
    Unmatched,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnlinePayment {
    pub day: NaiveDate,
    /// Seconds after the day's midnight (Vietnam time).
    pub second_of_day: u32,
    pub payee: usize,
    pub amount: i64,
    /// The resident whose account sent it.
    pub payer: usize,
    pub memo: Memo,
}

/// A school's charge for one household in one month: a payment intent naming the household.
#[derive(Debug, Clone, Serialize)]
pub struct Charge {
    pub day: NaiveDate,
    pub school: usize,
    pub household: usize,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CashPayment {
    pub day: NaiveDate,
    pub payee: usize,
    pub amount: i64,
    pub count: u32,
    pub household: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SurveyAnswer {
    pub day: NaiveDate,
    pub resident: usize,
    pub used_online_payment: bool,
}

/// The whole commune and everything that happens in it.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub seed: u64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// The day the registry, consents and bank accounts are recorded.
    pub registry_day: NaiveDate,
    pub hamlets: Vec<Hamlet>,
    pub households: Vec<Household>,
    pub residents: Vec<Resident>,
    pub payees: Vec<Payee>,
    pub charges: Vec<Charge>,
    pub online: Vec<OnlinePayment>,
    pub cash: Vec<CashPayment>,
    pub surveys: Vec<SurveyAnswer>,
}

fn account_number(rng: &mut StdRng) -> String {
    (0..10)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// Draws the commune and its months from `options.seed`.
pub fn plan(options: &Options) -> Plan {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let first_day = options.first_month;
    let last_day = first_day + Months::new(options.months) - Days::new(1);
    let registry_day = first_day - Days::new(1);
    let hamlets: Vec<Hamlet> = HAMLET_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| Hamlet {
            code: format!("X{:02}", i + 1),
            name: (*name).to_owned(),
        })
        .collect();
    // Hamlets differ in how far online payment has come: the market hamlet leads.
    let hamlet_adoption: Vec<f64> = (0..hamlets.len())
        .map(|i| {
            if i == 0 {
                0.75
            } else {
                rng.gen_range(0.15..0.65)
            }
        })
        .collect();

    let mut households = Vec::with_capacity(options.households);
    let mut residents: Vec<Resident> = Vec::with_capacity(options.households * 4);
    for h in 0..options.households {
        let hamlet = h % hamlets.len();
        let family = FAMILY_NAMES[rng.gen_range(0..FAMILY_NAMES.len())];
        let head_born = rng.gen_range(1945..=2000);
        let mut members = vec![(head_born, rng.gen_bool(0.5))];
        if rng.gen_bool(0.8) {
            members.push((head_born + rng.gen_range(-4..=4), !members[0].1));
        }
        for _ in 0..rng.gen_range(0..=3) {
            members.push((
                (head_born + rng.gen_range(20..=35)).min(options.first_month.year()),
                rng.gen_bool(0.5),
            ));
        }
        if rng.gen_bool(0.2) {
            members.push((head_born - rng.gen_range(20..=30), rng.gen_bool(0.5)));
        }
        let head = residents.len();
        for (born, female) in members {
            let index = residents.len();
            let given = if female {
                FEMALE_NAMES[rng.gen_range(0..FEMALE_NAMES.len())]
            } else {
                MALE_NAMES[rng.gen_range(0..MALE_NAMES.len())]
            };
            let age = first_day.year() - born;
            let adoption = hamlet_adoption[hamlet] * if age > 60 { 0.4 } else { 1.0 };
            let has_account = age >= 15 && rng.gen_bool((adoption + 0.2).min(0.95));
            let consent_on = rng
                .gen_bool(0.85)
                .then(|| registry_day - Days::new(rng.gen_range(0..400)));
            let span = (last_day - first_day).num_days().max(1) as u64;
            let withdrawn_on = (consent_on.is_some() && rng.gen_bool(0.03))
                .then(|| first_day + Days::new(rng.gen_range(0..span)));
            let left_on = rng
                .gen_bool(0.02)
                .then(|| first_day + Days::new(rng.gen_range(0..span)));
            residents.push(Resident {
                code: format!("NK{:06}", index + 1),
                household: h,
                full_name: format!("{family} {given}"),
                birth_year: born,
                gender: if female { "female" } else { "male" },
                left_on,
                consent_on,
                withdrawn_on,
                account: has_account.then(|| BankAccount {
                    bin: RESIDENT_BANKS[rng.gen_range(0..RESIDENT_BANKS.len())].to_owned(),
                    number: account_number(&mut rng),
                    // Staff link an account only with its owner's consent.
                    registered: consent_on.is_some() && rng.gen_bool(0.7),
                }),
                online_propensity: adoption,
            });
        }
        households.push(Household {
            code: format!("HO{:05}", h + 1),
            hamlet,
            address: format!("Số {}, xóm {}", h / hamlets.len() + 1, hamlets[hamlet].name),
            head,
        });
    }

    let market_adults: Vec<usize> = residents
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            households[r.household].hamlet == 0 && first_day.year() - r.birth_year >= 20
        })
        .map(|(i, _)| i)
        .collect();
    let providers = [Provider::PayOs, Provider::Casso, Provider::SePay];
    let mut payees = Vec::new();
    for v in 0..options.vendors {
        let owner = market_adults
            .get(v * 3 % market_adults.len().max(1))
            .copied();
        payees.push(Payee {
            code: format!("V{:03}", v + 1),
            name: format!("Quầy {} chợ Khe Cốc", v + 1),
            kind: "vendor",
            owner: owner.filter(|_| v % 4 != 3),
            provider: providers[v % providers.len()],
            bank_bin: "970436".to_owned(),
            account_number: format!("10{:08}", v + 1),
            holder_name: format!("TIEU THUONG {}", v + 1),
            records_cash: v % 2 == 0,
        });
    }
    for s in 0..options.schools {
        payees.push(Payee {
            code: format!("S{:02}", s + 1),
            name: format!(
                "Trường {} xã Tức Tranh",
                ["Mầm non", "Tiểu học", "THCS"][s % 3]
            ),
            kind: "school",
            owner: None,
            provider: Provider::PayOs,
            bank_bin: "970415".to_owned(),
            account_number: format!("20{:08}", s + 1),
            holder_name: format!("TRUONG {}", s + 1),
            records_cash: true,
        });
    }
    let vendors: Vec<usize> = (0..options.vendors).collect();
    let schools: Vec<usize> = (options.vendors..payees.len()).collect();

    let mut charges = Vec::new();
    let mut online = Vec::new();
    let mut cash = Vec::new();
    let mut day = first_day;
    while day <= last_day {
        let market_day = day.day().is_multiple_of(5);
        if market_day {
            for (index, resident) in residents.iter().enumerate() {
                let Some(_) = &resident.account else { continue };
                if !resident.lives_here_on(day) || !rng.gen_bool(resident.online_propensity * 0.5) {
                    continue;
                }
                let payee = *vendors.choose(&mut rng).expect("the market has vendors");
                online.push(OnlinePayment {
                    day,
                    second_of_day: rng.gen_range(6 * 3600..11 * 3600),
                    payee,
                    amount: rng.gen_range(10..=200) * 1_000,
                    payer: index,
                    memo: if rng.gen_bool(0.03) {
                        Memo::Unmatched
                    } else {
                        Memo::PayeeCode
                    },
                });
            }
            for &vendor in &vendors {
                if payees[vendor].records_cash {
                    let count = rng.gen_range(5..40);
                    cash.push(CashPayment {
                        day,
                        payee: vendor,
                        amount: i64::from(count) * rng.gen_range(15..60) * 1_000,
                        count,
                        household: None,
                    });
                }
            }
        }
        if day.day() == 5 {
            school_month(
                &mut rng,
                day,
                &residents,
                households.len(),
                &schools,
                &mut charges,
                &mut online,
                &mut cash,
            );
        }
        day = day + Days::new(1);
    }

    // The door-to-door survey, in the last month: what a third of the adults said.
    let survey_day = last_day - Days::new(3);
    let paid_online: std::collections::HashSet<usize> = online.iter().map(|p| p.payer).collect();
    let mut surveys = Vec::new();
    for (index, resident) in residents.iter().enumerate() {
        let adult = survey_day.year() - resident.birth_year >= 15;
        if adult && resident.lives_here_on(survey_day) && rng.gen_bool(0.33) {
            surveys.push(SurveyAnswer {
                day: survey_day,
                resident: index,
                // People mostly say what they did; some forget, some overstate.
                used_online_payment: paid_online.contains(&index) != rng.gen_bool(0.05),
            });
        }
    }

    Plan {
        seed: options.seed,
        first_day,
        last_day,
        registry_day,
        hamlets,
        households,
        residents,
        payees,
        charges,
        online,
        cash,
        surveys,
    }
}

/// A school month: each household with children at school is charged; most pay online from a
/// parent's account, some in cash at the school, a few not at all.
#[allow(clippy::too_many_arguments)]
fn school_month(
    rng: &mut StdRng,
    day: NaiveDate,
    residents: &[Resident],
    household_count: usize,
    schools: &[usize],
    charges: &mut Vec<Charge>,
    online: &mut Vec<OnlinePayment>,
    cash: &mut Vec<CashPayment>,
) {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); household_count];
    for (index, resident) in residents.iter().enumerate() {
        members[resident.household].push(index);
    }
    for (h, members) in members.iter().enumerate() {
        let pupils = members
            .iter()
            .filter(|&&r| (3..=14).contains(&(day.year() - residents[r].birth_year)))
            .count();
        if pupils == 0 || schools.is_empty() {
            continue;
        }
        let school = schools[h % schools.len()];
        let amount = i64::try_from(pupils).unwrap_or(1) * 150_000;
        let charge = charges.len();
        charges.push(Charge {
            day,
            school,
            household: h,
            amount,
        });
        let paying_parent = members
            .iter()
            .copied()
            .find(|&r| residents[r].account.is_some() && residents[r].lives_here_on(day));
        let paid_on = day + Days::new(rng.gen_range(1..10));
        match (paying_parent, rng.gen_range(0..10)) {
            (Some(parent), 0..=6) => online.push(OnlinePayment {
                day: paid_on,
                second_of_day: rng.gen_range(7 * 3600..21 * 3600),
                payee: school,
                amount,
                payer: parent,
                memo: Memo::Charge { charge },
            }),
            (_, 0..=8) => cash.push(CashPayment {
                day: paid_on,
                payee: school,
                amount,
                count: 1,
                household: Some(h),
            }),
            _ => {}
        }
    }
}
