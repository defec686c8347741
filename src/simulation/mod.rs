//! `market-ledger simulate`: a commune like Tức Tranh played through the real pipeline, with
//! a ground truth of what happened to check the adoption statistics against.
//!
//! The driver calls the same use cases the HTTP routes call, in-process, with the service's
//! clock moved to each simulated moment: the registry and the survey arrive as CSV imports,
//! residents' bank accounts are registered, payees onboarded with their feeds, schools issue
//! payment intents naming households, and every online payment is a delivery signed as payOS,
//! Casso or SePay sign, handed to the webhook use case as raw bytes.

pub mod plan;
pub mod truth;

use std::collections::HashMap;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::domain::bank_feed::{sign, Provider as FeedProvider, Secret};
use crate::domain::statistics::period::vietnam_day_start_micros;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::bank_feed::models::FeedRequest;
use crate::services::ledger::models::AmountText;
use crate::services::payers::{CashPaymentRequest, PayerRef, ResidentBankAccountRequest};
use crate::services::payments::models::{
    CollectionAccountRequest, NewIntentRequest, NewPayeeRequest,
};
use crate::services::registry::models::{NewConsentRequest, ResidentPatchRequest};
use crate::store::IdempotencyClaim;
use plan::{Memo, Options, Plan, Provider};
use truth::{ground_truth, GroundTruth};

/// Plays a simulation through a service's use cases.
pub struct Driver<'a> {
    state: &'a AppState,
    caller: Caller,
}

impl<'a> Driver<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Self {
            state,
            caller: Caller::system("simulation"),
        }
    }

    /// Moves the service's clock to `day` at `seconds` after midnight, Vietnam time.
    fn at(&self, day: NaiveDate, seconds: u32) -> DateTime<Utc> {
        let micros = vietnam_day_start_micros(day) + i64::from(seconds) * 1_000_000;
        let moment = DateTime::<Utc>::from_timestamp_micros(micros).expect("a day in range");
        self.state.clock.set(moment);
        moment
    }

    fn claim(&self) -> IdempotencyClaim {
        IdempotencyClaim {
            user_id: self.caller.user_id,
            key: Uuid::new_v4().to_string(),
            request_hash: String::new(),
        }
    }
}

fn feed_provider(provider: Provider) -> FeedProvider {
    match provider {
        Provider::PayOs => FeedProvider::PayOs,
        Provider::Casso => FeedProvider::Casso,
        Provider::SePay => FeedProvider::SePay,
    }
}

/// The secret of a simulated feed; each collection account has its own.
fn feed_secret(payee_code: &str) -> String {
    format!("simulated-{payee_code}-feed-secret-0123456789")
}

fn residents_csv(plan: &Plan) -> String {
    let mut csv = String::from(
        "Mã xóm,Tên xóm,Mã hộ,Địa chỉ,Chủ hộ,Mã nhân khẩu,Họ và tên,Năm sinh,Giới tính,\
         Đồng ý thống kê,Ngày đồng ý\n",
    );
    for (index, resident) in plan.residents.iter().enumerate() {
        let household = &plan.households[resident.household];
        let hamlet = &plan.hamlets[household.hamlet];
        let (consent, consent_on) = match resident.consent_on {
            Some(day) => ("có", day.format("%d/%m/%Y").to_string()),
            None => ("", String::new()),
        };
        csv.push_str(&format!(
            "{},{},{},\"{}\",{},{},{},{},{},{},{}\n",
            hamlet.code,
            hamlet.name,
            household.code,
            household.address,
            if household.head == index { "x" } else { "" },
            resident.code,
            resident.full_name,
            resident.birth_year,
            if resident.gender == "female" {
                "Nữ"
            } else {
                "Nam"
            },
            consent,
            consent_on,
        ));
    }
    csv
}

fn survey_csv(plan: &Plan) -> String {
    let mut csv =
        String::from("Mã nhân khẩu,Ngày khảo sát,Có thanh toán trực tuyến 12 tháng qua\n");
    for answer in &plan.surveys {
        csv.push_str(&format!(
            "{},{},{}\n",
            plan.residents[answer.resident].code,
            answer.day.format("%d/%m/%Y"),
            if answer.used_online_payment {
                "có"
            } else {
                "không"
            }
        ));
    }
    csv
}

/// One thing that happens on a simulated day, in the order of the day.
enum Step {
    MoveAway(usize),
    WithdrawConsent(usize),
    Charge(usize),
    Online(usize),
    Cash(usize),
    Survey,
}

/// Plays the plan drawn from `options` and returns its ground truth.
pub async fn simulate(driver: &Driver<'_>, options: &Options) -> anyhow::Result<GroundTruth> {
    let plan = plan::plan(options);
    play(driver, &plan).await?;
    Ok(ground_truth(&plan))
}

async fn play(driver: &Driver<'_>, plan: &Plan) -> anyhow::Result<()> {
    let state = driver.state;
    let caller = &driver.caller;
    if !resident_ids(state).await?.is_empty() {
        anyhow::bail!("the database already holds a registry; simulate into a fresh database");
    }
    driver.at(plan.registry_day, 8 * 3600);
    let summary = state
        .registry
        .import_residents(caller, residents_csv(plan).as_bytes(), true)
        .await
        .map_err(|e| anyhow!("registry import: {e}"))?;
    tracing::info!(
        residents = summary.residents_created,
        "simulated registry imported"
    );
    let resident_ids = resident_ids(state).await?;
    let household_ids = household_ids(state).await?;

    for resident in &plan.residents {
        let Some(account) = resident.account.as_ref().filter(|a| a.registered) else {
            continue;
        };
        state
            .payers
            .register_resident_account(
                caller,
                resident_ids[&resident.code],
                ResidentBankAccountRequest {
                    bank_bin: account.bin.clone(),
                    account_number: account.number.clone(),
                    reason: "đăng ký tại buổi họp xóm".to_owned(),
                },
            )
            .await
            .map_err(|e| anyhow!("bank account of {}: {e}", resident.code))?;
    }

    let mut payee_ids = Vec::with_capacity(plan.payees.len());
    for payee in &plan.payees {
        let view = state
            .payments
            .create_payee(
                caller,
                NewPayeeRequest {
                    kind: payee.kind.to_owned(),
                    name: payee.name.clone(),
                    code: Some(payee.code.clone()),
                    hamlet: Some(plan.hamlets[0].name.clone()),
                    stall: None,
                    phone: None,
                    category: None,
                    collection_account: CollectionAccountRequest {
                        bank_bin: payee.bank_bin.clone(),
                        account_number: payee.account_number.clone(),
                        holder_name: payee.holder_name.clone(),
                    },
                    owner_resident_id: payee.owner.map(|o| resident_ids[&plan.residents[o].code]),
                },
            )
            .await
            .map_err(|e| anyhow!("payee {}: {e}", payee.code))?;
        let provider = feed_provider(payee.provider).as_str();
        state
            .bank_feed
            .set_feed(
                caller,
                view.collection_account.id,
                FeedRequest {
                    provider: provider.to_owned(),
                    secrets: vec![feed_secret(&payee.code)],
                },
            )
            .await
            .map_err(|e| anyhow!("feed of {}: {e}", payee.code))?;
        payee_ids.push(view.id);
    }

    let mut steps: Vec<(NaiveDate, u32, Step)> = Vec::new();
    for (index, resident) in plan.residents.iter().enumerate() {
        if let Some(day) = resident.left_on {
            // The day after their last day here, staff record the move.
            steps.push((day + Days::new(1), 8 * 3600, Step::MoveAway(index)));
        }
        if let Some(day) = resident.withdrawn_on {
            steps.push((day, 8 * 3600, Step::WithdrawConsent(index)));
        }
    }
    steps.extend(
        plan.charges
            .iter()
            .enumerate()
            .map(|(i, c)| (c.day, 7 * 3600, Step::Charge(i))),
    );
    steps.extend(
        plan.online
            .iter()
            .enumerate()
            .map(|(i, p)| (p.day, p.second_of_day, Step::Online(i))),
    );
    steps.extend(
        plan.cash
            .iter()
            .enumerate()
            .map(|(i, c)| (c.day, 20 * 3600, Step::Cash(i))),
    );
    if let Some(day) = plan.surveys.first().map(|s| s.day) {
        steps.push((day, 21 * 3600, Step::Survey));
    }
    steps.sort_by_key(|(day, second, _)| (*day, *second));

    let mut references: HashMap<usize, String> = HashMap::new();
    let mut next_transfer_id: u64 = 1;
    for (day, second, step) in steps {
        let moment = driver.at(day, second);
        match step {
            Step::MoveAway(index) => {
                let resident = &plan.residents[index];
                let patch: ResidentPatchRequest = serde_json::from_value(serde_json::json!({
                    "status": "moved_away",
                    "left_on": resident.left_on,
                }))?;
                state
                    .registry
                    .update_resident(resident_ids[&resident.code], patch)
                    .await
                    .map_err(|e| anyhow!("move of {}: {e}", resident.code))?;
            }
            Step::WithdrawConsent(index) => {
                let resident = &plan.residents[index];
                let request: NewConsentRequest = serde_json::from_value(serde_json::json!({
                    "given": false,
                    "effective_on": day,
                }))?;
                state
                    .registry
                    .record_consent(caller, resident_ids[&resident.code], request)
                    .await
                    .map_err(|e| anyhow!("consent of {}: {e}", resident.code))?;
            }
            Step::Charge(index) => {
                let charge = &plan.charges[index];
                let reply = state
                    .payments
                    .create_intent(
                        caller,
                        driver.claim(),
                        NewIntentRequest {
                            payee_id: payee_ids[charge.school],
                            amount: AmountText(charge.amount.to_string()),
                            description: Some(format!("Học phí tháng {}", day.format("%m/%Y"))),
                            expires_in_seconds: Some(30 * 24 * 3600),
                            payer: Some(PayerRef {
                                resident_id: None,
                                household_id: Some(
                                    household_ids[&plan.households[charge.household].code],
                                ),
                            }),
                        },
                    )
                    .await
                    .map_err(|e| anyhow!("charge {index}: {e}"))?;
                let intent: serde_json::Value = serde_json::from_str(&reply.body)?;
                let reference = intent["reference"]
                    .as_str()
                    .context("an intent has a reference")?;
                references.insert(index, reference.to_owned());
            }
            Step::Online(index) => {
                let payment = &plan.online[index];
                let payee = &plan.payees[payment.payee];
                let payer = &plan.residents[payment.payer];
                let account = payer
                    .account
                    .as_ref()
                    .context("online payers hold an account")?;
                let memo = match payment.memo {
                    Memo::PayeeCode => format!("{} thanh toan", payee.code),
                    Memo::Charge { charge } => format!(
                        "{} hoc phi",
                        references
                            .get(&charge)
                            .context("a charge is issued before it is paid")?
                    ),
                    Memo::Unmatched => "chuyen tien".to_owned(),
                };
                let transfer = sign::Transfer {
                    id: next_transfer_id,
                    account_number: payee.account_number.clone(),
                    amount: payment.amount,
                    memo,
                    booked_at: day.and_time(NaiveTime::MIN)
                        + chrono::Duration::seconds(i64::from(second)),
                    payer: Some((
                        account.bin.clone(),
                        account.number.clone(),
                        crate::domain::text::fold_to_ascii(&payer.full_name).to_uppercase(),
                    )),
                };
                next_transfer_id += 1;
                let provider = feed_provider(payee.provider);
                let secret = Secret::new(provider, &feed_secret(&payee.code))
                    .map_err(|e| anyhow!("the simulated feed secret: {e}"))?;
                let delivery =
                    sign::delivery(provider, &secret, &transfer, moment.timestamp_millis());
                state
                    .bank_feed
                    .receive(delivery.provider, &delivery.headers, &delivery.body)
                    .await
                    .map_err(|e| anyhow!("delivery {index}: {e}"))?;
            }
            Step::Cash(index) => {
                let cash = &plan.cash[index];
                state
                    .payers
                    .record_cash(
                        caller,
                        driver.claim(),
                        payee_ids[cash.payee],
                        CashPaymentRequest {
                            amount: AmountText(cash.amount.to_string()),
                            payment_count: Some(cash.count),
                            occurred_at: Some(moment),
                            payer: cash.household.map(|h| PayerRef {
                                resident_id: None,
                                household_id: Some(household_ids[&plan.households[h].code]),
                            }),
                            note: None,
                        },
                    )
                    .await
                    .map_err(|e| anyhow!("cash {index}: {e}"))?;
            }
            Step::Survey => {
                state
                    .registry
                    .import_survey(survey_csv(plan).as_bytes(), true)
                    .await
                    .map_err(|e| anyhow!("survey import: {e}"))?;
            }
        }
    }
    Ok(())
}

/// Every id by code, read page by page as any client would.
async fn ids_by_code<Page, Next>(mut page: Page) -> anyhow::Result<HashMap<String, Uuid>>
where
    Page: FnMut(serde_json::Value) -> Next,
    Next: std::future::Future<Output = anyhow::Result<(Vec<(String, Uuid)>, Option<String>)>>,
{
    let mut ids = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let (rows, next) = page(serde_json::json!({ "limit": 500, "cursor": cursor })).await?;
        ids.extend(rows);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
}

async fn resident_ids(state: &AppState) -> anyhow::Result<HashMap<String, Uuid>> {
    ids_by_code(|query| async move {
        let page = state
            .registry
            .residents(serde_json::from_value(query)?)
            .await
            .map_err(|e| anyhow!("residents: {e}"))?;
        let rows = page.data.into_iter().map(|r| (r.code, r.id)).collect();
        Ok((rows, page.next_cursor))
    })
    .await
}

async fn household_ids(state: &AppState) -> anyhow::Result<HashMap<String, Uuid>> {
    ids_by_code(|query| async move {
        let page = state
            .registry
            .households(serde_json::from_value(query)?)
            .await
            .map_err(|e| anyhow!("households: {e}"))?;
        let rows = page.data.into_iter().map(|h| (h.code, h.id)).collect();
        Ok((rows, page.next_cursor))
    })
    .await
}
