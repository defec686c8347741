//! The school office's sheet of per-pupil QR slips for a run: one slip per pupil who owes
//! something (name, class, what is owed, the pupil's payment QR and its reference), laid out
//! to print on A4 and cut along the dashed lines, to hand out on paper.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{grouped, page, Frame};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::payments::models::IntentView;
use crate::services::schools::models::StatusQuery;

/// One pupil's slip.
pub struct Slip {
    pub pupil: String,
    pub code: String,
    pub class: String,
    pub owed: String,
    pub reference: String,
    pub qr_svg_url: String,
}

#[derive(Template)]
#[template(path = "slips.html")]
struct SlipsPage<'a> {
    f: &'a Frame,
    school: Uuid,
    run: Uuid,
    school_name: String,
    run_name: String,
    slips: Vec<Slip>,
}

#[derive(Deserialize)]
pub struct SlipsQuery {
    /// Only this class's pupils; all classes without it.
    class: Option<Uuid>,
}

pub async fn slips(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<SlipsQuery>,
) -> HttpResponse {
    let (school, run) = path.into_inner();
    let class_id = query.class;
    let read = state
        .run(move |s| async move {
            let status = s
                .schools
                .run_status(&caller, school, run, StatusQuery { class_id })
                .await
                .map_err(ApiError::from)?;
            let classes = s.schools.list_classes(&caller, school).await?;
            let runs = s.schools.list_runs(&caller, school).await?;
            let school_name = s.payments.payee(&caller, school).await?.name;
            let mut intents: HashMap<Uuid, IntentView> = HashMap::new();
            for planned in s.schools.run_intents(&caller, school, run).await? {
                let intent = s.payments.intent(&caller, planned.intent_id).await?;
                intents.insert(planned.pupil_id, intent);
            }
            let class_names: BTreeMap<Uuid, String> =
                classes.data.into_iter().map(|c| (c.id, c.name)).collect();
            let mut slips: Vec<Slip> = status
                .data
                .iter()
                .filter(|pupil| pupil.owing > 0)
                .filter_map(|pupil| {
                    let intent = intents.get(&pupil.pupil_id)?;
                    Some(Slip {
                        pupil: pupil.full_name.clone(),
                        code: pupil.code.clone(),
                        class: class_names
                            .get(&pupil.class_id)
                            .cloned()
                            .unwrap_or_default(),
                        owed: grouped(pupil.owing),
                        reference: intent.reference.clone(),
                        qr_svg_url: intent.qr_svg_url.clone(),
                    })
                })
                .collect();
            slips.sort_by(|a, b| (&a.class, &a.pupil).cmp(&(&b.class, &b.pupil)));
            let run_name = runs
                .data
                .into_iter()
                .find(|r| r.id == run)
                .map(|r| r.name)
                .unwrap_or_default();
            Ok::<_, ApiError>((school_name, run_name, slips))
        })
        .await;
    let (school_name, run_name, slips) = match read {
        Ok(read) => read,
        Err(e) => return super::refusal(&request, &e),
    };
    let frame = Frame::new(&request);
    let body = SlipsPage {
        f: &frame,
        school,
        run,
        school_name,
        run_name,
        slips,
    };
    page(&request, &frame, StatusCode::OK, &body)
}
