//! The partnership's starting rows: the default signal rules, and a few records in the
//! South East (Southampton, Hampshire, Portsmouth and the region's RSC office) and
//! London so that a fresh hub has something to show.
//!
//! The rules are the hub's defaults — every scale gets them — and, like every
//! threshold, they are rows a hub administrator tunes afterwards (`updateSignalRule`).
//! The demo records are fixed text attached to organisations and schools picked by
//! code and lowest URN, so they are the same on every run and at every scale.

use chrono::{DateTime, NaiveDate, Utc};
use entities::{
    buddy_pairing, inspection_expert, organisation, peer_review, peer_review_action,
    peer_review_participant, school, self_evaluation, self_evaluation_version, signal_rule,
    support_offer, support_offer_region, support_request, support_request_school,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr,
    EntityTrait, QueryFilter, QueryOrder,
};

use crate::domain::{GeographicLevel, OrganisationKind, Phase, PupilGroup};
use crate::partnership::{
    ActionStatus, Audience, Availability, Content, Judgement, PairingStatus, ParticipantRole,
    PeerReviewFormat, PeerReviewStatus, Section, SelfEvaluationStatus, SupportReach, SupportStatus,
    Theme, Urgency,
};
use crate::signals::{SignalKind, SignalMethod};

/// Who the seed says wrote its records.
const SEEDED_BY: &str = "seed";

/// One default rule.
struct RuleDef {
    code: &'static str,
    name: &'static str,
    description: &'static str,
    kind: SignalKind,
    method: SignalMethod,
    indicator: &'static str,
    group: Option<PupilGroup>,
    years_running: Option<i32>,
    threshold: f64,
}

/// The default rules: the examples and their mirror images.
const DEFAULT_RULES: [RuleDef; 10] = [
    RuleDef {
        code: "persistent_absence_rising",
        name: "Persistent absence rising three years running",
        description: "The share of pupils missing 10% or more of sessions rose in each of \
                      the last three years.",
        kind: SignalKind::Risk,
        method: SignalMethod::Rising,
        indicator: "persistent_absence_rate",
        group: Some(PupilGroup::All),
        years_running: Some(3),
        threshold: 0.0,
    },
    RuleDef {
        code: "persistent_absence_falling",
        name: "Persistent absence falling three years running",
        description: "The share of pupils missing 10% or more of sessions fell in each of \
                      the last three years.",
        kind: SignalKind::Success,
        method: SignalMethod::Falling,
        indicator: "persistent_absence_rate",
        group: Some(PupilGroup::All),
        years_running: Some(3),
        threshold: 0.0,
    },
    RuleDef {
        code: "suspensions_above_region",
        name: "Suspensions above the region's rate",
        description: "More than 1 suspension per 100 pupils above the region's rate (for a \
                      region: above England's).",
        kind: SignalKind::Risk,
        method: SignalMethod::AboveComparator,
        indicator: "suspension_rate",
        group: Some(PupilGroup::All),
        years_running: None,
        threshold: 1.0,
    },
    RuleDef {
        code: "suspensions_below_region",
        name: "Suspensions below the region's rate",
        description: "More than 1 suspension per 100 pupils below the region's rate (for a \
                      region: below England's).",
        kind: SignalKind::Success,
        method: SignalMethod::BelowComparator,
        indicator: "suspension_rate",
        group: Some(PupilGroup::All),
        years_running: None,
        threshold: 1.0,
    },
    RuleDef {
        code: "attendance_gap_wider",
        name: "Disadvantage gap in attendance wider than the region's",
        description: "Disadvantaged pupils' attendance trails their peers' by more than half \
                      a percentage point more than it does across the region.",
        kind: SignalKind::Risk,
        method: SignalMethod::GapWider,
        indicator: "attendance_rate",
        group: None,
        years_running: None,
        threshold: 0.5,
    },
    RuleDef {
        code: "attendance_gap_narrower",
        name: "Disadvantage gap in attendance narrower than the region's",
        description: "Disadvantaged pupils' attendance trails their peers' by more than half \
                      a percentage point less than it does across the region.",
        kind: SignalKind::Success,
        method: SignalMethod::GapNarrower,
        indicator: "attendance_rate",
        group: None,
        years_running: None,
        threshold: 0.5,
    },
    RuleDef {
        code: "ks2_gap_wider",
        name: "Disadvantage gap at key stage 2 wider than the region's",
        description: "The gap in reading, writing and maths at the expected standard is more \
                      than 3 percentage points wider than the region's.",
        kind: SignalKind::Risk,
        method: SignalMethod::GapWider,
        indicator: "ks2_rwm_expected_pct",
        group: None,
        years_running: None,
        threshold: 3.0,
    },
    RuleDef {
        code: "ks2_gap_narrower",
        name: "Disadvantage gap at key stage 2 narrower than the region's",
        description: "The gap in reading, writing and maths at the expected standard is more \
                      than 3 percentage points narrower than the region's.",
        kind: SignalKind::Success,
        method: SignalMethod::GapNarrower,
        indicator: "ks2_rwm_expected_pct",
        group: None,
        years_running: None,
        threshold: 3.0,
    },
    RuleDef {
        code: "cme_rising",
        name: "Children missing education rising three years running",
        description: "The number of pupils leaving roll without a known destination in \
                      education rose in each of the last three years.",
        kind: SignalKind::Risk,
        method: SignalMethod::Rising,
        indicator: "cme_count",
        group: Some(PupilGroup::All),
        years_running: Some(3),
        threshold: 0.0,
    },
    RuleDef {
        code: "cme_falling",
        name: "Children missing education falling three years running",
        description: "The number of pupils leaving roll without a known destination in \
                      education fell in each of the last three years.",
        kind: SignalKind::Success,
        method: SignalMethod::Falling,
        indicator: "cme_count",
        group: Some(PupilGroup::All),
        years_running: Some(3),
        threshold: 0.0,
    },
];

/// Rows written by [`seed`].
pub struct Written {
    pub signal_rules: u64,
    pub records: u64,
}

/// Writes the default rules and the demo records. `at` stamps every row.
pub async fn seed(db: &impl ConnectionTrait, at: DateTime<Utc>) -> Result<Written, DbErr> {
    let rules = DEFAULT_RULES.iter().map(|r| signal_rule::ActiveModel {
        id: NotSet,
        code: Set(r.code.to_owned()),
        name: Set(r.name.to_owned()),
        description: Set(r.description.to_owned()),
        kind: Set(r.kind.as_str().to_owned()),
        method: Set(r.method.as_str().to_owned()),
        indicator_code: Set(r.indicator.to_owned()),
        pupil_group: Set(r.group.map(|g| g.as_str().to_owned())),
        years_running: Set(r.years_running),
        threshold: Set(r.threshold),
        active: Set(true),
        updated_at: Set(at),
    });
    let signal_rules = signal_rule::Entity::insert_many(rules.collect::<Vec<_>>())
        .exec_without_returning(db)
        .await?;
    let records = demo_records(db, at).await?;
    Ok(Written {
        signal_rules,
        records,
    })
}

/// The demo records. Organisations or schools missing at a scale (none are, today)
/// would leave their records out rather than fail the seed.
async fn demo_records(db: &impl ConnectionTrait, at: DateTime<Utc>) -> Result<u64, DbErr> {
    use OrganisationKind as K;
    let org = |kind: K, code: &'static str| async move {
        organisation::Entity::find()
            .filter(organisation::Column::Kind.eq(kind.as_str()))
            .filter(organisation::Column::Code.eq(code))
            .one(db)
            .await
    };
    let (Some(southampton), Some(hampshire), Some(portsmouth), Some(camden)) = (
        org(K::LocalAuthority, "852").await?,
        org(K::LocalAuthority, "850").await?,
        org(K::LocalAuthority, "851").await?,
        org(K::LocalAuthority, "202").await?,
    ) else {
        return Ok(0);
    };
    let schools_of = |la: i32| async move {
        school::Entity::find()
            .filter(school::Column::LaId.eq(la))
            .filter(school::Column::IsOpen.eq(true))
            .order_by_asc(school::Column::Urn)
            .all(db)
            .await
    };
    let southampton_schools = schools_of(southampton.id).await?;
    let mut written = 0;

    // Southampton's self-evaluation, shared with the region, in its second version;
    // Hampshire's is still a draft.
    let first = Content {
        sections: vec![Section {
            heading: "Attendance".to_owned(),
            judgement: Some(Judgement::NeedsAttention.as_str().to_owned()),
            narrative: "Persistent absence remains above the regional rate.".to_owned(),
        }],
        priorities: vec!["Reduce persistent absence among disadvantaged pupils".to_owned()],
        key_indicators: vec!["persistent_absence_rate".to_owned()],
    };
    let second = Content {
        sections: vec![
            first.sections[0].clone(),
            Section {
                heading: "Inclusion".to_owned(),
                judgement: Some(Judgement::Expected.as_str().to_owned()),
                narrative: "Suspensions have fallen since the inclusion charter was signed; \
                            permanent exclusions are rare."
                    .to_owned(),
            },
        ],
        priorities: vec![
            "Reduce persistent absence among disadvantaged pupils".to_owned(),
            "Close the attendance gap for disadvantaged pupils".to_owned(),
        ],
        key_indicators: vec![
            "attendance_rate".to_owned(),
            "persistent_absence_rate".to_owned(),
            "suspension_rate".to_owned(),
        ],
    };
    for (author, status, versions) in [
        (
            &southampton,
            SelfEvaluationStatus::Shared,
            vec![first.clone(), second],
        ),
        (&hampshire, SelfEvaluationStatus::Draft, vec![first]),
    ] {
        let shared = status == SelfEvaluationStatus::Shared;
        let evaluation = self_evaluation::ActiveModel {
            id: NotSet,
            organisation_id: Set(author.id),
            region_code: Set(author.region_code.clone().unwrap_or_default()),
            period: Set("2024/25".to_owned()),
            area_level: Set(GeographicLevel::La.as_str().to_owned()),
            area_code: Set(author.code.clone()),
            status: Set(status.as_str().to_owned()),
            audience: Set(shared.then(|| Audience::Region.as_str().to_owned())),
            current_version: Set(versions.len() as i32),
            shared_at: Set(shared.then_some(at)),
            reviewed_at: Set(None),
            reviewed_by_organisation_id: Set(None),
            review_comment: Set(None),
            created_by: Set(SEEDED_BY.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(db)
        .await?;
        written += 1;
        for (n, content) in versions.into_iter().enumerate() {
            self_evaluation_version::ActiveModel {
                id: NotSet,
                self_evaluation_id: Set(evaluation.id),
                version: Set(n as i32 + 1),
                title: Set(format!("{} inclusion self-evaluation 2024/25", author.name)),
                content: Set(serde_json::to_value(&content)
                    .map_err(|e| DbErr::Custom(format!("seed: content: {e}")))?),
                edited_by: Set(SEEDED_BY.to_owned()),
                edited_at: Set(at),
            }
            .insert(db)
            .await?;
            written += 1;
        }
    }

    // A triad: Southampton reviewed by Hampshire (lead) and Portsmouth, completed and
    // shared with the region's RSC office and inspectorate team.
    let review = peer_review::ActiveModel {
        id: NotSet,
        reviewed_organisation_id: Set(southampton.id),
        region_code: Set(southampton.region_code.clone().unwrap_or_default()),
        format: Set(PeerReviewFormat::Triad.as_str().to_owned()),
        theme: Set(Theme::Attendance.as_str().to_owned()),
        title: Set("South Coast triad: attendance".to_owned()),
        starts_on: Set(date(2025, 3, 3)),
        ends_on: Set(date(2025, 3, 5)),
        findings: Set(Some(
            "Strong tracking of absence at school level; weaker early help for families \
             of persistently absent pupils."
                .to_owned(),
        )),
        status: Set(PeerReviewStatus::Completed.as_str().to_owned()),
        shared_at: Set(Some(at)),
        created_by: Set(SEEDED_BY.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    written += 1;
    for (organisation, role) in [
        (&southampton, ParticipantRole::Reviewed),
        (&hampshire, ParticipantRole::LeadReviewer),
        (&portsmouth, ParticipantRole::Reviewer),
    ] {
        peer_review_participant::ActiveModel {
            peer_review_id: Set(review.id),
            organisation_id: Set(organisation.id),
            role: Set(role.as_str().to_owned()),
        }
        .insert(db)
        .await?;
        written += 1;
    }
    peer_review_action::ActiveModel {
        id: NotSet,
        peer_review_id: Set(review.id),
        description: Set(
            "Set up an early-help route for families of persistently absent \
                          pupils"
                .to_owned(),
        ),
        owner_organisation_id: Set(southampton.id),
        owner_name: Set(Some("Head of Inclusion".to_owned())),
        due_on: Set(date(2025, 9, 30)),
        status: Set(ActionStatus::Open.as_str().to_owned()),
        completed_at: Set(None),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    written += 1;

    // The regional map of need: Southampton asks for SEND help for two schools;
    // Hampshire offers SEND advice; Portsmouth offers attendance support.
    let request = support_request::ActiveModel {
        id: NotSet,
        organisation_id: Set(southampton.id),
        region_code: Set(southampton.region_code.clone().unwrap_or_default()),
        theme: Set(Theme::Send.as_str().to_owned()),
        urgency: Set(Urgency::High.as_str().to_owned()),
        title: Set("SEND review support for two primary schools".to_owned()),
        detail: Set("Help to review SEN support plans ahead of inspection.".to_owned()),
        status: Set(SupportStatus::Open.as_str().to_owned()),
        offer_id: Set(None),
        confidential: Set(false),
        reach: Set(SupportReach::Region.as_str().to_owned()),
        created_by: Set(SEEDED_BY.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    written += 1;
    for school in southampton_schools.iter().take(2) {
        support_request_school::ActiveModel {
            support_request_id: Set(request.id),
            school_urn: Set(school.urn),
        }
        .insert(db)
        .await?;
        written += 1;
    }
    // A head's request kept confidential: Southampton and whoever meets it see it; the
    // rest of the region, and the inspectorate, do not.
    if let Some(school) = southampton_schools.get(2) {
        let request = support_request::ActiveModel {
            id: NotSet,
            organisation_id: Set(southampton.id),
            region_code: Set(southampton.region_code.clone().unwrap_or_default()),
            theme: Set(Theme::InspectionReadiness.as_str().to_owned()),
            urgency: Set(Urgency::Medium.as_str().to_owned()),
            title: Set("Head would value a conversation with a serving inspector".to_owned()),
            detail: Set("A new head, first inspection expected this year.".to_owned()),
            status: Set(SupportStatus::Open.as_str().to_owned()),
            offer_id: Set(None),
            confidential: Set(true),
            reach: Set(SupportReach::Region.as_str().to_owned()),
            created_by: Set(SEEDED_BY.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(db)
        .await?;
        support_request_school::ActiveModel {
            support_request_id: Set(request.id),
            school_urn: Set(school.urn),
        }
        .insert(db)
        .await?;
        written += 2;
    }
    // Camden's offer reaches across London's edge into the South East.
    for (offerer, theme, title, capacity, open_to) in [
        (
            &hampshire,
            Theme::Send,
            "SEND adviser visits",
            "6 adviser days in the spring term",
            None,
        ),
        (
            &portsmouth,
            Theme::Attendance,
            "Attendance lead coaching",
            "Half a day a week for a term",
            None,
        ),
        (
            &camden,
            Theme::Send,
            "Special school outreach",
            "Two visits from a special school leader",
            southampton.region_code.clone(),
        ),
    ] {
        let offer = support_offer::ActiveModel {
            id: NotSet,
            organisation_id: Set(offerer.id),
            region_code: Set(offerer.region_code.clone().unwrap_or_default()),
            theme: Set(theme.as_str().to_owned()),
            title: Set(title.to_owned()),
            detail: Set(format!("Offered by {}.", offerer.name)),
            capacity: Set(capacity.to_owned()),
            status: Set(SupportStatus::Open.as_str().to_owned()),
            reach: Set(if open_to.is_some() {
                SupportReach::Regions
            } else {
                SupportReach::Region
            }
            .as_str()
            .to_owned()),
            created_by: Set(SEEDED_BY.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(db)
        .await?;
        written += 1;
        if let Some(region) = open_to {
            support_offer_region::ActiveModel {
                support_offer_id: Set(offer.id),
                region_code: Set(region),
            }
            .insert(db)
            .await?;
            written += 1;
        }
    }

    // The inspection expert directory: two in the South East, one in London; and a
    // buddy for the head of Southampton's first school.
    let mut experts = Vec::new();
    for (employer, name, title, phase, availability, email) in [
        (
            &hampshire,
            "Alex Morgan",
            "Primary school improvement adviser, former inspector",
            Some(Phase::Primary),
            Availability::Available,
            "alex.morgan@hants.example",
        ),
        (
            &portsmouth,
            "Sam Patel",
            "Secondary headteacher, serving inspector",
            Some(Phase::Secondary),
            Availability::Limited,
            "sam.patel@portsmouth.example",
        ),
        (
            &camden,
            "Jo Okafor",
            "Special school headteacher, former inspector",
            Some(Phase::Special),
            Availability::Available,
            "jo.okafor@camden.example",
        ),
    ] {
        let expert = inspection_expert::ActiveModel {
            id: NotSet,
            organisation_id: Set(employer.id),
            region_code: Set(employer.region_code.clone().unwrap_or_default()),
            name: Set(name.to_owned()),
            job_title: Set(title.to_owned()),
            phase: Set(phase.map(|p| p.as_str().to_owned())),
            expertise: Set("Led and took part in inspections; coaches leaders through \
                            their inspection window."
                .to_owned()),
            availability: Set(availability.as_str().to_owned()),
            availability_note: Set(None),
            email: Set(Some(email.to_owned())),
            phone: Set(Some("01234 567890".to_owned())),
            created_by: Set(SEEDED_BY.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(db)
        .await?;
        experts.push(expert);
        written += 1;
    }
    // Southampton's first school's head has a buddy from Hampshire (accepted); its
    // second school has asked Portsmouth's serving inspector, who has not answered yet.
    for (school, buddy, status, notes) in [
        (
            southampton_schools.first(),
            experts.first(),
            PairingStatus::Active,
            "Fortnightly calls until the inspection.",
        ),
        (
            southampton_schools.get(1),
            experts.get(1),
            PairingStatus::Requested,
            "A first conversation before the spring term.",
        ),
    ] {
        let (Some(school), Some(buddy)) = (school, buddy) else {
            continue;
        };
        let answered = status == PairingStatus::Active;
        buddy_pairing::ActiveModel {
            id: NotSet,
            school_urn: Set(school.urn),
            expert_id: Set(buddy.id),
            status: Set(status.as_str().to_owned()),
            starts_on: Set(date(2026, 9, 1)),
            ends_on: Set(None),
            notes: Set(Some(notes.to_owned())),
            responded_by: Set(answered.then(|| SEEDED_BY.to_owned())),
            responded_at: Set(answered.then_some(at)),
            ended_by: Set(None),
            created_by: Set(SEEDED_BY.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(db)
        .await?;
        written += 1;
    }
    Ok(written)
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}
