//! The payment intents a posted run made, one per pupil who owed something: what the school
//! office prints on each pupil's paper slip.

use uuid::Uuid;

use super::models::PupilIntentView;
use super::{SchoolError, SchoolService};
use crate::services::auth::Caller;

impl SchoolService {
    /// Each pupil's payment intent of the run (another school's run: not found).
    pub async fn run_intents(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
    ) -> Result<Vec<PupilIntentView>, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        Self::run_of(&mut unit, school_id, run_id, false).await?;
        let intents = unit.run_intents(run_id).await?;
        unit.rollback().await?;
        Ok(intents
            .into_iter()
            .map(|(intent_id, pupil_id)| PupilIntentView {
                pupil_id,
                intent_id,
            })
            .collect())
    }
}
