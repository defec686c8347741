use chrono::NaiveDate;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, d).unwrap()
}

fn item(id: u128, fund: Fund, mandatory: bool, unit: FeeUnit, amount: i64) -> ItemFacts {
    ItemFacts {
        id: Uuid::from_u128(id),
        name: format!("item {id}"),
        fund,
        mandatory,
        unit,
        grade_amounts: vec![(1, amount)],
        class_amounts: Vec::new(),
        enrolled: Vec::new(),
    }
}

fn pupil(id: u128) -> PupilFacts {
    PupilFacts {
        id: Uuid::from_u128(id),
        class_id: Uuid::from_u128(1000),
        grade: 1,
        reductions: Vec::new(),
    }
}

#[test]
fn a_run_charges_mandatory_items_per_day_enrolled_optional_and_reductions() {
    let meals = item(1, Fund::School, true, FeeUnit::SchoolDay, 20_000);
    let insurance = item(2, Fund::PassThrough, true, FeeUnit::Year, 884_520);
    let mut club = item(3, Fund::School, false, FeeUnit::Month, 100_000);
    club.enrolled = vec![Uuid::from_u128(11)];
    let mut fund = item(4, Fund::ParentsAssociation, true, FeeUnit::Term, 150_000);
    fund.class_amounts = vec![(Uuid::from_u128(1000), 120_000)];
    let mut poor = pupil(10);
    poor.reductions = vec![
        (Uuid::from_u128(1), Reduction::Percent(50)),
        (Uuid::from_u128(2), Reduction::Percent(100)),
    ];
    let enrolled = pupil(11);
    let items = [meals, insurance, club, fund];
    let lines = compute_charges(&[poor, enrolled], &items, Some(21)).unwrap();
    let of = |p: u128| -> Vec<(u128, i64, i64)> {
        lines
            .iter()
            .filter(|l| l.pupil_id == Uuid::from_u128(p))
            .map(|l| (l.fee_item_id.as_u128(), l.gross, l.amount))
            .collect()
    };
    // Fully exempt insurance is no charge; the class amount wins over the grade's.
    assert_eq!(of(10), vec![(1, 420_000, 210_000), (4, 120_000, 120_000)]);
    assert_eq!(
        of(11),
        vec![
            (1, 420_000, 420_000),
            (2, 884_520, 884_520),
            (3, 100_000, 100_000),
            (4, 120_000, 120_000)
        ]
    );
    assert_eq!(
        compute_charges(&[pupil(1)], &items, None),
        Err(RunError::SchoolDaysRequired("item 1".into()))
    );
}

#[test]
fn a_grade_without_an_amount_is_not_charged() {
    let mut other = pupil(1);
    other.grade = 5;
    let items = [item(1, Fund::School, true, FeeUnit::Month, 10)];
    assert!(compute_charges(&[other], &items, None).unwrap().is_empty());
}

#[test]
fn reductions_round_in_the_familys_favour_and_never_exceed_the_charge() {
    assert_eq!(Reduction::Percent(50).of(3), 2);
    assert_eq!(Reduction::Percent(100).of(884_520), 884_520);
    assert_eq!(Reduction::Percent(30).of(100_000), 30_000);
    assert_eq!(Reduction::Fixed(50_000).of(20_000), 20_000);
}

fn open(id: u128, due: u32, mandatory: bool, posted_at: i64, outstanding: i64) -> OpenCharge {
    OpenCharge {
        id: Uuid::from_u128(id),
        due_on: day(due),
        mandatory,
        posted_at,
        fund: Fund::School,
        outstanding,
    }
}

#[test]
fn money_pays_the_oldest_due_first_then_mandatory_before_optional() {
    let charges = [
        open(1, 20, true, 5, 100),
        open(2, 10, false, 1, 50),
        open(3, 10, true, 2, 70),
        open(4, 20, false, 3, 30),
    ];
    let (paid, credit) = allocate(&charges, 150);
    let ids: Vec<(u128, i64)> = paid.iter().map(|(id, a)| (id.as_u128(), *a)).collect();
    assert_eq!(ids, vec![(3, 70), (2, 50), (1, 30)]);
    assert_eq!(credit, 0);
    let (paid, credit) = allocate(&charges, 300);
    assert_eq!(paid.len(), 4);
    assert_eq!(credit, 50);
}

#[test]
fn paid_states_and_percentages() {
    assert_eq!(PaidState::of(100, 100), PaidState::Paid);
    assert_eq!(PaidState::of(100, 1), PaidState::Partly);
    assert_eq!(PaidState::of(100, 0), PaidState::Unpaid);
    assert_eq!(percent_text(25, 40), "62.5");
    assert_eq!(percent_text(1, 3), "33.3");
    assert_eq!(percent_text(0, 0), "0.0");
}

#[test]
fn merged_legs_move_each_fund_once_and_each_pupil_apart() {
    let [payee, first, second, uncollected, meals, parents] =
        [1, 2, 3, 4, 5, 6].map(Uuid::from_u128);
    let legs = vec![
        (payee, first, 300),
        (uncollected, meals, 200),
        (uncollected, parents, 100),
        (payee, second, 250),
        (uncollected, meals, 250),
    ];
    assert_eq!(
        merge_legs(legs).unwrap(),
        vec![
            (payee, first, 300),
            (uncollected, meals, 450),
            (uncollected, parents, 100),
            (payee, second, 250),
        ]
    );
    let too_much = vec![(uncollected, meals, i64::MAX), (uncollected, meals, 1)];
    assert!(merge_legs(too_much).is_err());
}

proptest! {
    #[test]
    fn an_allocation_moves_exactly_the_money_and_overpays_nothing(
        owed in proptest::collection::vec((1u32..28, any::<bool>(), 0i64..1_000_000), 0..12),
        available in 0i64..5_000_000,
    ) {
        let charges: Vec<OpenCharge> = owed
            .iter()
            .enumerate()
            .map(|(i, (due, mandatory, outstanding))| {
                open(i as u128, *due, *mandatory, i as i64, *outstanding)
            })
            .collect();
        let (paid, credit) = allocate(&charges, available);
        prop_assert_eq!(paid.iter().map(|(_, a)| a).sum::<i64>() + credit, available);
        for (id, amount) in &paid {
            let charge = charges.iter().find(|c| c.id == *id).unwrap();
            prop_assert!(*amount > 0 && *amount <= charge.outstanding);
        }
        let total: i64 = charges.iter().map(|c| c.outstanding).sum();
        prop_assert_eq!(credit, (available - total).max(0));
    }

    #[test]
    fn merging_legs_keeps_what_every_account_is_debited_and_credited(
        legs in proptest::collection::vec((0u128..4, 0u128..4, 1i64..1_000_000), 0..40),
    ) {
        let legs: Vec<(Uuid, Uuid, i64)> = legs
            .into_iter()
            .map(|(debit, credit, amount)| (Uuid::from_u128(debit), Uuid::from_u128(credit), amount))
            .collect();
        let merged = merge_legs(legs.clone()).unwrap();
        let moves = |legs: &[(Uuid, Uuid, i64)]| {
            let mut moves = std::collections::BTreeMap::new();
            for (debit, credit, amount) in legs {
                *moves.entry((*debit, *credit)).or_insert(0i64) += amount;
            }
            moves
        };
        prop_assert_eq!(moves(&merged), moves(&legs));
        prop_assert_eq!(merged.len(), moves(&legs).len());
    }
}
