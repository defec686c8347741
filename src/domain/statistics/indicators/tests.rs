use super::*;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn month(text: &str) -> Period {
    Period::month_of(day(&format!("{text}-01")))
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn hamlet(code: &str, valid_to: Option<&str>, merged_into: Option<&str>) -> HamletFacts {
    HamletFacts {
        code: code.to_owned(),
        name: format!("Xóm {code}"),
        valid_from: day("2020-01-01"),
        valid_to: valid_to.map(day),
        merged_into: merged_into.map(str::to_owned),
    }
}

fn household(n: u128, hamlet: &str) -> HouseholdFacts {
    HouseholdFacts {
        id: id(n),
        hamlet_code: hamlet.to_owned(),
        moved_in_on: None,
        moved_out_on: None,
    }
}

fn resident(n: u128, household: u128, birth_year: i32, gender: Gender) -> ResidentFacts {
    ResidentFacts {
        id: id(n),
        household_id: id(household),
        birth_year,
        birth_date: None,
        gender,
        living_since: None,
        left_on: None,
        consents: vec![Consent {
            effective_on: day("2025-01-01"),
            given: true,
        }],
    }
}

fn paid_by(payer: Payer, on: &str, amount: i64) -> OnlinePayment {
    OnlinePayment {
        day: day(on),
        amount,
        payee_id: Some(id(900)),
        named_payer: None,
        account_payer: Some(payer),
    }
}

fn query(indicator: Indicator, breakdown: Breakdown) -> Query {
    Query {
        indicator,
        flow: Flow::Either,
        breakdown,
    }
}

fn figures(table: &Table) -> Vec<(&str, u64, u64)> {
    table
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.numerator, r.denominator))
        .collect()
}

/// Two hamlets; in A one adult paid by a linked account, one did not, a child paid (not an
/// adult), one moved away before March; in B one adult paid but withdrew consent before.
fn commune() -> Facts {
    let mut withdrawn = resident(21, 2, 1970, Gender::Male);
    withdrawn.consents.push(Consent {
        effective_on: day("2026-02-15"),
        given: false,
    });
    let mut moved_away = resident(13, 1, 1980, Gender::Male);
    moved_away.left_on = Some(day("2026-02-10"));
    Facts {
        hamlets: vec![hamlet("A", None, None), hamlet("B", None, None)],
        households: vec![household(1, "A"), household(2, "B")],
        residents: vec![
            resident(11, 1, 1985, Gender::Female),
            resident(12, 1, 1990, Gender::Male),
            resident(14, 1, 2015, Gender::Female),
            moved_away,
            withdrawn,
        ],
        payees: vec![PayeeFacts {
            id: id(900),
            kind: PayeeKind::Vendor,
            owner_resident_id: None,
            active: true,
            created_on: day("2025-01-01"),
        }],
        online: vec![
            paid_by(Payer::Resident(id(11)), "2026-03-05", 50_000),
            paid_by(Payer::Resident(id(14)), "2026-03-06", 10_000),
            paid_by(Payer::Resident(id(21)), "2026-03-07", 20_000),
            paid_by(Payer::Resident(id(13)), "2026-03-08", 30_000),
        ],
        ..Facts::default()
    }
}

#[test]
fn observed_residents_count_consenting_adults_living_here_in_the_period() {
    let facts = commune();
    let statistics = Statistics::new(&facts);
    let tables = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    // A: residents 11 (paid) and 12 (did not); 14 is a child, 13 left in February (its
    // payment after leaving counts for nobody living here). B: 21 withdrew consent.
    assert_eq!(
        figures(&tables[0]),
        [("A", 1, 2), ("B", 0, 1), ("total", 1, 3)]
    );
    // In February 13 still lived here.
    let february = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::Total),
            &month("2026-02"),
        )
        .unwrap();
    assert_eq!(figures(&february[0]), [("total", 0, 4)]);
}

#[test]
fn breakdowns_by_gender_and_age_band_cover_every_adult_once() {
    let facts = commune();
    let statistics = Statistics::new(&facts);
    let by_gender = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::Gender),
            &month("2026-03"),
        )
        .unwrap();
    assert_eq!(
        figures(&by_gender[0]),
        [
            ("female", 1, 1),
            ("male", 0, 2),
            ("other", 0, 0),
            ("unknown", 0, 0),
            ("total", 1, 3)
        ]
    );
    let by_age = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::AgeBand),
            &month("2026-03"),
        )
        .unwrap();
    // Born 1985 → 41, 1990 → 36, 1970 → 56.
    assert_eq!(
        figures(&by_age[0]),
        [
            ("15-24", 0, 0),
            ("25-34", 0, 0),
            ("35-44", 1, 2),
            ("45-54", 0, 0),
            ("55-64", 0, 1),
            ("65+", 0, 0),
            ("total", 1, 3)
        ]
    );
    assert!(statistics
        .compute(
            &query(Indicator::Vendors, Breakdown::Hamlet),
            &month("2026-03")
        )
        .is_err());
}

#[test]
fn an_exact_birth_date_decides_the_age() {
    let mut young = resident(1, 1, 2011, Gender::Female);
    young.birth_date = Some(day("2011-04-02"));
    assert_eq!(young.age_on(day("2026-04-01")), 14);
    assert_eq!(young.age_on(day("2026-04-02")), 15);
    young.birth_date = None;
    assert_eq!(young.age_on(day("2026-01-01")), 15);
}

#[test]
fn households_count_their_own_and_their_members_payments() {
    let mut facts = commune();
    facts.households.push(household(3, "B"));
    facts.online.push(OnlinePayment {
        named_payer: Some(Payer::Household(id(3))),
        ..paid_by(Payer::Resident(id(21)), "2026-03-20", 400_000)
    });
    let statistics = Statistics::new(&facts);
    let tables = statistics
        .compute(
            &query(Indicator::ObservedHouseholds, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    // Household 2 only had its consent-withdrawn member's payment.
    assert_eq!(
        figures(&tables[0]),
        [("A", 1, 1), ("B", 1, 2), ("total", 2, 3)]
    );
}

#[test]
fn a_merge_moves_households_only_from_the_month_after() {
    let mut facts = commune();
    facts.hamlets = vec![
        hamlet("A", None, None),
        hamlet("B", Some("2026-03-31"), Some("A")),
    ];
    let statistics = Statistics::new(&facts);
    let march = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    assert_eq!(
        figures(&march[0]),
        [("A", 1, 2), ("B", 0, 1), ("total", 1, 3)]
    );
    let april = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::Hamlet),
            &month("2026-04"),
        )
        .unwrap();
    assert_eq!(figures(&april[0]), [("A", 0, 3), ("total", 0, 3)]);
}

#[test]
fn received_payments_count_for_the_vendor_who_runs_the_stall() {
    let mut facts = commune();
    facts.payees[0].owner_resident_id = Some(id(12));
    let statistics = Statistics::new(&facts);
    let by_flow = |flow| {
        let query = Query {
            flow,
            ..query(Indicator::ObservedResidents, Breakdown::Total)
        };
        let total = &statistics.compute(&query, &month("2026-03")).unwrap()[0].rows[0];
        (total.numerator, total.denominator)
    };
    assert_eq!(by_flow(Flow::Made), (1, 3));
    assert_eq!(by_flow(Flow::Received), (1, 3));
    assert_eq!(by_flow(Flow::Either), (2, 3));
}

#[test]
fn cashless_share_counts_payments_and_money_online_and_in_cash() {
    let mut facts = commune();
    facts.payees.push(PayeeFacts {
        id: id(901),
        kind: PayeeKind::School,
        owner_resident_id: None,
        active: true,
        created_on: day("2025-01-01"),
    });
    facts.cash = vec![
        CashPayment {
            day: day("2026-03-10"),
            amount: 200_000,
            count: 8,
            payee_id: id(900),
            named_payer: None,
        },
        CashPayment {
            day: day("2026-03-11"),
            amount: 300_000,
            count: 1,
            payee_id: id(901),
            named_payer: Some(Payer::Household(id(2))),
        },
    ];
    let statistics = Statistics::new(&facts);
    let by_kind = statistics
        .compute(
            &query(Indicator::CashlessShare, Breakdown::PayeeKind),
            &month("2026-03"),
        )
        .unwrap();
    let rows = &by_kind[0].rows;
    assert_eq!(
        figures(&by_kind[0]),
        [
            ("vendor", 4, 12),
            ("school", 0, 1),
            ("cooperative", 0, 0),
            ("unplaced", 0, 0),
            ("total", 4, 13)
        ]
    );
    assert_eq!(rows[0].amount_numerator, Some(110_000));
    assert_eq!(rows[0].amount_denominator, Some(310_000));
    assert_eq!(rows[4].amount_denominator, Some(610_000));
    let by_hamlet = statistics
        .compute(
            &query(Indicator::CashlessShare, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    // Payers: 11, 14 (consented, household 1 in A), 13 (household 1), 21 withdrew (unplaced);
    // the vendor's cash total has no payer; the school's cash names household 2 (B).
    assert_eq!(
        figures(&by_hamlet[0]),
        [
            ("A", 3, 3),
            ("B", 0, 1),
            ("unplaced", 1, 9),
            ("total", 4, 13)
        ]
    );
    let takings = statistics
        .compute(
            &query(Indicator::VendorTakings, Breakdown::Total),
            &month("2026-03"),
        )
        .unwrap();
    assert_eq!(figures(&takings[0]), [("total", 4, 12)]);
}

#[test]
fn vendors_with_a_qr_and_coverage_of_identified_payers() {
    let mut facts = commune();
    facts.payees.push(PayeeFacts {
        id: id(902),
        kind: PayeeKind::Vendor,
        owner_resident_id: None,
        active: true,
        created_on: day("2026-03-31"),
    });
    facts.payees.push(PayeeFacts {
        id: id(903),
        kind: PayeeKind::Vendor,
        owner_resident_id: None,
        active: true,
        created_on: day("2026-04-01"),
    });
    facts.online.push(OnlinePayment {
        account_payer: None,
        ..paid_by(Payer::Resident(id(11)), "2026-03-09", 1_000)
    });
    let statistics = Statistics::new(&facts);
    let vendors = statistics
        .compute(
            &query(Indicator::Vendors, Breakdown::Total),
            &month("2026-03"),
        )
        .unwrap();
    assert_eq!(figures(&vendors[0]), [("total", 1, 2)]);
    let coverage = statistics
        .compute(
            &query(Indicator::Coverage, Breakdown::Total),
            &month("2026-03"),
        )
        .unwrap();
    // 5 payments: 11, 14, 13 identified; 21 withdrew consent; one with no payer account.
    assert_eq!(figures(&coverage[0]), [("total", 3, 5)]);
}

#[test]
fn the_survey_uses_each_residents_latest_answer_of_the_last_12_months() {
    let mut facts = commune();
    let answer = |resident: u128, on: &str, yes: bool| SurveyAnswer {
        resident_id: id(resident),
        surveyed_on: day(on),
        used_online_payment: yes,
    };
    facts.surveys = vec![
        answer(11, "2025-03-31", true),
        answer(12, "2025-06-01", false),
        answer(12, "2026-02-01", true),
        answer(21, "2026-04-01", true),
    ];
    let statistics = Statistics::new(&facts);
    let tables = statistics
        .compute(
            &query(Indicator::Survey, Breakdown::Total),
            &month("2026-03"),
        )
        .unwrap();
    // 11's answer is older than 12 months; 21's is after the period.
    assert_eq!(figures(&tables[0]), [("total", 1, 1)]);
    assert_eq!(tables[1].name, "coverage");
    assert_eq!(figures(&tables[1]), [("total", 1, 3)]);
}

#[test]
fn the_funnel_narrows_from_linked_accounts_to_regular_users() {
    let mut facts = commune();
    facts.residents_with_linked_account = vec![id(11), id(12)];
    facts.online.extend([
        paid_by(Payer::Resident(id(11)), "2026-01-31", 1_000),
        paid_by(Payer::Resident(id(11)), "2026-02-01", 1_000),
        paid_by(Payer::Resident(id(12)), "2025-06-01", 1_000),
    ]);
    let statistics = Statistics::new(&facts);
    let tables = statistics
        .compute(
            &query(Indicator::Funnel, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    let stage = |name: &str| figures(tables.iter().find(|t| t.name == name).unwrap());
    assert_eq!(
        stage("linked_account"),
        [("A", 2, 2), ("B", 0, 1), ("total", 2, 3)]
    );
    assert_eq!(
        stage("paid_online_ever"),
        [("A", 2, 2), ("B", 0, 1), ("total", 2, 3)]
    );
    assert_eq!(
        stage("paid_online_in_period"),
        [("A", 1, 2), ("B", 0, 1), ("total", 1, 3)]
    );
    assert_eq!(
        stage("paid_online_each_of_last_3_months"),
        [("A", 1, 2), ("B", 0, 1), ("total", 1, 3)]
    );
}

#[test]
fn a_household_named_on_the_charge_pays_through_its_linked_member() {
    let mut facts = commune();
    facts.online = vec![
        OnlinePayment {
            named_payer: Some(Payer::Household(id(1))),
            ..paid_by(Payer::Resident(id(12)), "2026-03-05", 150_000)
        },
        // The account of a resident of another household pays household 1's charge.
        OnlinePayment {
            named_payer: Some(Payer::Household(id(1))),
            ..paid_by(Payer::Resident(id(21)), "2026-03-06", 150_000)
        },
    ];
    let statistics = Statistics::new(&facts);
    let residents = statistics
        .compute(
            &query(Indicator::ObservedResidents, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    assert_eq!(
        figures(&residents[0]),
        [("A", 1, 2), ("B", 0, 1), ("total", 1, 3)]
    );
    let households = statistics
        .compute(
            &query(Indicator::ObservedHouseholds, Breakdown::Hamlet),
            &month("2026-03"),
        )
        .unwrap();
    assert_eq!(
        figures(&households[0]),
        [("A", 1, 1), ("B", 0, 1), ("total", 1, 2)]
    );
}

#[test]
fn money_totals_saturate_instead_of_overflowing() {
    // Cash is never posted, so rows of recorded cash can add up to more than an i64 holds.
    let mut table = Tally::new(Vec::new());
    let row = |key: &str| (key.to_owned(), key.to_owned());
    table.add_money(row("vendor"), 1, i64::MAX - 1, false);
    table.add_money(row("school"), 1, 2, true);
    let table = table.finish("share");
    let total = table.rows.last().unwrap();
    assert_eq!(total.amount_denominator, Some(i64::MAX));
    assert_eq!(total.amount_numerator, Some(2));
    assert_eq!(total.denominator, 2);
}
