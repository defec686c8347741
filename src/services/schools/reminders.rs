//! Reminders to parents of a run's unpaid charges: previewed, then sent through the
//! configured `ReminderSender`, never twice for the same charge on the same day.
//!
//! Sending claims each charge for the day in `school_reminders` (its primary key is
//! (charge, day)) and commits before the notifier is called, so a concurrent or repeated send
//! finds the charge taken and leaves it out. A message is made only of the charges this send
//! claimed. When the notifier accepts it the claims become `sent`; when it fails they are
//! deleted, so the same day can try again. A crash between the claim and the answer leaves
//! the charges claimed: they are not reminded again that day (at most once a day, never twice).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::reminder_sender::{ReminderMessage, ReminderPupil, ReminderSender};
use super::{SchoolError, SchoolService};
use crate::clock::Clock;
use crate::domain::banks::find_bank;
use crate::domain::schools::reminder::{
    by_recipient, reminder_text, OwingPupil, PaymentDetails, Recipient,
};
use crate::services::auth::Caller;
use crate::store::school_io::{OpenChargeForReminder, ReminderClaim};
use crate::store::Store;

#[derive(Clone)]
pub struct ReminderService {
    schools: SchoolService,
    store: Arc<dyn Store>,
    clock: Clock,
    sender: Arc<dyn ReminderSender>,
}

/// A message of the preview, and whether it was already sent today.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReminderPreviewItem {
    #[serde(flatten)]
    pub message: ReminderMessage,
    /// Every charge of the message was already reminded today: sending leaves it out.
    pub sent_today: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReminderPreview {
    pub day: NaiveDate,
    /// `log` or `http`: where sending would deliver.
    pub notifier: String,
    pub messages: Vec<ReminderPreviewItem>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReminderFailure {
    pub message_id: String,
    pub guardian_phone: Option<String>,
    /// Why the notifier failed; the charges may be sent again today.
    pub error: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReminderSendSummary {
    pub day: NaiveDate,
    pub notifier: String,
    /// Messages the notifier accepted.
    pub sent: usize,
    /// Unpaid charges left out because they were already reminded today.
    pub charges_already_reminded: usize,
    pub failed: Vec<ReminderFailure>,
    pub messages: Vec<ReminderMessage>,
}

/// The same charges on the same day give the same id.
fn message_id(day: NaiveDate, charges: &[Uuid]) -> String {
    let mut sorted = charges.to_vec();
    sorted.sort();
    let mut hash = Sha256::new();
    hash.update(day.to_string());
    for charge in sorted {
        hash.update(charge.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

/// A run's unpaid charges grouped per pupil, in the order read (pupil code, item).
fn owing_pupils(charges: &[OpenChargeForReminder]) -> Vec<(OwingPupil, Vec<Uuid>)> {
    let mut pupils: Vec<(OwingPupil, Vec<Uuid>)> = Vec::new();
    for charge in charges {
        if pupils
            .last()
            .is_none_or(|(p, _)| p.pupil_id != charge.pupil_id)
        {
            let payment = match (&charge.reference, &charge.qr_payload) {
                (Some(reference), Some(qr_payload)) => Some(PaymentDetails {
                    reference: reference.clone(),
                    qr_payload: qr_payload.clone(),
                    bank: charge
                        .bank_bin
                        .as_deref()
                        .map(|bin| find_bank(bin).map_or(bin.to_owned(), |b| b.short_name.clone()))
                        .unwrap_or_default(),
                    account_number: charge.account_number.clone().unwrap_or_default(),
                }),
                _ => None,
            };
            pupils.push((
                OwingPupil {
                    pupil_id: charge.pupil_id,
                    code: charge.code.clone(),
                    full_name: charge.full_name.clone(),
                    class_name: charge.class_name.clone(),
                    household_id: charge.household_id,
                    guardian_name: charge.guardian_name.clone(),
                    guardian_phone: charge.guardian_phone.clone(),
                    items: Vec::new(),
                    owed: 0,
                    payment,
                },
                Vec::new(),
            ));
        }
        let (pupil, charge_ids) = pupils.last_mut().expect("pushed above");
        pupil.items.push(charge.item_name.clone());
        pupil.owed += charge.owed;
        charge_ids.push(charge.charge_id);
    }
    pupils
}

/// One message per recipient, with the charges it carries.
fn messages(
    school: (Uuid, &str),
    run: (Uuid, &str),
    day: NaiveDate,
    pupils: Vec<(OwingPupil, Vec<Uuid>)>,
) -> Vec<(ReminderMessage, Vec<Uuid>)> {
    let charges_of: std::collections::HashMap<Uuid, Vec<Uuid>> = pupils
        .iter()
        .map(|(pupil, charges)| (pupil.pupil_id, charges.clone()))
        .collect();
    by_recipient(pupils.into_iter().map(|(pupil, _)| pupil).collect())
        .into_iter()
        .map(|(recipient, pupils)| {
            let charges: Vec<Uuid> = pupils
                .iter()
                .flat_map(|p| charges_of[&p.pupil_id].iter().copied())
                .collect();
            let first = &pupils[0];
            let message = ReminderMessage {
                message_id: message_id(day, &charges),
                school_id: school.0,
                school_name: school.1.to_owned(),
                run_id: run.0,
                day,
                household_id: match recipient {
                    Recipient::Household(id) => Some(id),
                    _ => None,
                },
                guardian_name: pupils.iter().find_map(|p| p.guardian_name.clone()),
                guardian_phone: pupils
                    .iter()
                    .find_map(|p| p.guardian_phone.clone())
                    .or_else(|| first.guardian_phone.clone()),
                text: reminder_text(school.1, run.1, &pupils),
                pupils: pupils
                    .iter()
                    .map(|p| ReminderPupil {
                        pupil_id: p.pupil_id,
                        code: p.code.clone(),
                        full_name: p.full_name.clone(),
                        class_name: p.class_name.clone(),
                        owed: p.owed,
                        payment_reference: p.payment.as_ref().map(|d| d.reference.clone()),
                        qr_payload: p.payment.as_ref().map(|d| d.qr_payload.clone()),
                    })
                    .collect(),
            };
            (message, charges)
        })
        .collect()
}

impl ReminderService {
    pub fn new(
        schools: SchoolService,
        store: Arc<dyn Store>,
        clock: Clock,
        sender: Arc<dyn ReminderSender>,
    ) -> Self {
        Self {
            schools,
            store,
            clock,
            sender,
        }
    }

    fn today(&self) -> NaiveDate {
        crate::domain::registry::day_in_vietnam(self.clock.now())
    }

    /// The school's name, the run's name and its unpaid charges (of the class, if given).
    async fn open_charges(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
        class_id: Option<Uuid>,
        day: NaiveDate,
    ) -> Result<(String, String, Vec<OpenChargeForReminder>, HashSet<Uuid>), SchoolError> {
        let school = self.schools.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let run = SchoolService::run_of(&mut unit, school_id, run_id, false).await?;
        if let Some(class_id) = class_id {
            SchoolService::class_of(&mut unit, school_id, class_id).await?;
        }
        let charges = unit.open_run_charges(run_id, class_id).await?;
        let reminded = unit.reminded_charges(run_id, day).await?;
        unit.rollback().await?;
        Ok((
            school.details.name,
            run.name,
            charges,
            reminded.into_iter().collect(),
        ))
    }

    /// The messages a send would deliver now, each with whether it already went today.
    pub async fn preview(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
        class_id: Option<Uuid>,
    ) -> Result<ReminderPreview, SchoolError> {
        let day = self.today();
        let (school, run, charges, reminded) = self
            .open_charges(caller, school_id, run_id, class_id, day)
            .await?;
        let messages = messages(
            (school_id, &school),
            (run_id, &run),
            day,
            owing_pupils(&charges),
        )
        .into_iter()
        .map(|(message, charges)| ReminderPreviewItem {
            sent_today: charges.iter().all(|c| reminded.contains(c)),
            message,
        })
        .collect();
        Ok(ReminderPreview {
            day,
            notifier: self.sender.kind().to_owned(),
            messages,
        })
    }

    /// Sends today's reminders of the run's unpaid charges not yet reminded today.
    pub async fn send(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
        class_id: Option<Uuid>,
    ) -> Result<ReminderSendSummary, SchoolError> {
        let day = self.today();
        let (school, run, charges, _) = self
            .open_charges(caller, school_id, run_id, class_id, day)
            .await?;
        let notifier = self.sender.kind();
        // Claim every charge for the day, then make the messages of what this send claimed
        // and label the claims with them, in one transaction committed before any message
        // leaves: a concurrent send finds these charges taken.
        let mut unit = self.store.begin().await?;
        let mut claimed = Vec::new();
        let now = self.clock.now_micros();
        for charge in &charges {
            let claim = ReminderClaim {
                charge_id: charge.charge_id,
                day,
                school_id,
                notifier,
                claimed_by: &caller.username,
                now,
            };
            if unit.claim_reminder(&claim).await? {
                claimed.push(charge.clone());
            }
        }
        let outgoing = messages(
            (school_id, &school),
            (run_id, &run),
            day,
            owing_pupils(&claimed),
        );
        for (message, charge_ids) in &outgoing {
            unit.label_reminders(charge_ids, day, &message.message_id)
                .await?;
        }
        unit.commit().await?;
        let charges_already_reminded = charges.len() - claimed.len();
        let mut summary = ReminderSendSummary {
            day,
            notifier: notifier.to_owned(),
            sent: 0,
            charges_already_reminded,
            failed: Vec::new(),
            messages: Vec::new(),
        };
        for (message, charge_ids) in outgoing {
            let outcome = self.sender.send(&message).await;
            let mut unit = self.store.begin().await?;
            match outcome {
                Ok(()) => {
                    unit.mark_reminder_sent(&charge_ids, day, self.clock.now_micros())
                        .await?;
                    summary.sent += 1;
                    summary.messages.push(message);
                }
                Err(error) => {
                    unit.release_reminder(&charge_ids, day).await?;
                    tracing::warn!(message_id = %message.message_id, %error, "reminder not sent");
                    summary.failed.push(ReminderFailure {
                        message_id: message.message_id,
                        guardian_phone: message.guardian_phone,
                        error: error.to_string(),
                    });
                }
            }
            unit.commit().await?;
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_id_depends_on_the_day_and_the_charges_not_their_order() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(
            super::message_id(day, &[a, b]),
            super::message_id(day, &[b, a])
        );
        assert_ne!(
            super::message_id(day, &[a]),
            super::message_id(day.succ_opt().unwrap(), &[a])
        );
    }
}
