use portcullis_policy::Policy;
use portcullis_sql::Operation;
use portcullis_store::{
    AuditFilter, AuditKindFilter, Durability, EndorsementDecision, MasterKey, RequestStatus, Store,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::*;

const NOW: OffsetDateTime = datetime!(2030-01-01 10:00 UTC);

const POLICY: &str = "
workflows:
  - name: mgmt
    approvers: {users: [carol, dave], roles: [managers]}
    required: 2
    valid_for: 1h
    expire_after: 2h
  - name: dba
    approvers: {users: [carol]}
  - name: ops
    approvers: {users: [carol, dave]}
    required: 2
    expire_after: 2h
    on_timeout: reject
    escalate_after: 1h
    escalate_to: {users: [erin]}
reservations:
  - {resource: prod, workflow: ops, max_window: 4h}
on_demand:
  - name: hr-read
    resource: app
    grants: [{objects: ['hr.*'], privileges: [select]}]
    workflow: mgmt
    max_duration: 8h
  - name: app-any
    resource: app
    workflow: dba
    max_duration: 2h
";

fn setup() -> (tempfile::TempDir, Store, Policy) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.db"),
        MasterKey::generate(),
        Durability::Journaled,
    )
    .unwrap();
    let policy = Policy::from_yaml(POLICY, "p.yaml").unwrap();
    (dir, store, policy)
}

fn held<'a>(text: &'a str) -> HeldStatement<'a> {
    HeldStatement {
        user: "alice",
        resource: "app",
        text,
        summary: "delete public.t",
        reason: "approval required",
        session_id: "s1",
    }
}

fn bundle_ask() -> AccessAsk {
    AccessAsk {
        bundle: Some("hr-read".into()),
        resource: None,
        objects: vec![],
        privileges: vec![],
        duration: Duration::hours(2),
        reason: "quarterly report".into(),
    }
}

#[test]
fn n_of_m_approves_and_the_requester_never_endorses() {
    let (_d, store, policy) = setup();
    let r = request_access(&store, &policy, "alice", &bundle_ask(), NOW).unwrap();
    assert_eq!(r.status, RequestStatus::Pending);
    let approve = EndorsementDecision::Approve;
    let e = decide(&store, &policy, "alice", &[], r.id, approve, None, NOW).unwrap_err();
    assert!(matches!(e, WorkflowError::SelfEndorsement(_)), "{e}");
    let e = decide(&store, &policy, "bob", &[], r.id, approve, None, NOW).unwrap_err();
    assert!(
        e.to_string().contains("not an approver of workflow `mgmt`"),
        "{e}"
    );
    let one = decide(&store, &policy, "carol", &[], r.id, approve, None, NOW).unwrap();
    assert_eq!(one.status, RequestStatus::Pending);
    let e = decide(&store, &policy, "carol", &[], r.id, approve, None, NOW).unwrap_err();
    assert!(matches!(e, WorkflowError::AlreadyEndorsed { .. }), "{e}");
    // A member of a listed role counts as an approver.
    let two = decide(
        &store,
        &policy,
        "erin",
        &["managers".into()],
        r.id,
        approve,
        Some("ok".into()),
        NOW,
    )
    .unwrap();
    assert_eq!(two.status, RequestStatus::Approved);
    assert_eq!(two.valid_until, Some(millis(NOW + Duration::hours(2))));
    let e = decide(&store, &policy, "dave", &[], r.id, approve, None, NOW).unwrap_err();
    assert!(matches!(e, WorkflowError::NotPending { .. }), "{e}");

    let grants = active_grants(&store, &policy, NOW).unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].privileges, vec![Operation::Read]);
    assert!(grants[0].is_active(NOW + Duration::hours(1)));
    assert!(!grants[0].is_active(NOW + Duration::hours(2)));
    assert!(active_grants(&store, &policy, NOW + Duration::hours(3))
        .unwrap()
        .is_empty());
    assert_eq!(store.access_grants_version().unwrap(), 1);
}

#[test]
fn grants_approved_since_start_at_their_approval() {
    let (_d, store, policy) = setup();
    let ask = AccessAsk {
        bundle: None,
        resource: Some("app".into()),
        objects: vec!["public.t".into()],
        privileges: vec!["select".into()],
        duration: Duration::hours(1),
        reason: "fix the report".into(),
    };
    let r = request_access(&store, &policy, "alice", &ask, NOW).unwrap();
    let approved_at = NOW + Duration::minutes(30);
    let approve = EndorsementDecision::Approve;
    decide(
        &store,
        &policy,
        "carol",
        &[],
        r.id,
        approve,
        None,
        approved_at,
    )
    .unwrap();

    // Replaying the past: before its approval the grant did not exist.
    let grants = grants_approved_since(&store, &policy, NOW).unwrap();
    assert_eq!(grants.len(), 1);
    assert!(!grants[0].is_active(NOW + Duration::minutes(10)));
    assert!(grants[0].is_active(approved_at));
    assert!(!grants[0].is_active(approved_at + Duration::hours(1)));
    // The gateway's view, asked at the present, is unchanged.
    let active = active_grants(&store, &policy, approved_at).unwrap();
    assert!(active[0].valid_from.is_none());
}

#[test]
fn one_rejection_is_final() {
    let (_d, store, policy) = setup();
    let r = request_access(&store, &policy, "alice", &bundle_ask(), NOW).unwrap();
    let rejected = decide(
        &store,
        &policy,
        "dave",
        &[],
        r.id,
        EndorsementDecision::Reject,
        Some("no".into()),
        NOW,
    )
    .unwrap();
    assert_eq!(rejected.status, RequestStatus::Rejected);
    let e = decide(
        &store,
        &policy,
        "carol",
        &[],
        r.id,
        EndorsementDecision::Approve,
        None,
        NOW,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("is rejected; its decision is final"),
        "{e}"
    );
}

#[test]
fn requests_are_checked_against_on_demand_entries() {
    let (_d, store, policy) = setup();
    let mut ask = bundle_ask();
    ask.duration = Duration::hours(9);
    let e = request_access(&store, &policy, "alice", &ask, NOW).unwrap_err();
    assert!(e.to_string().contains("at most 28800s"), "{e}");
    ask.bundle = Some("nope".into());
    let e = request_access(&store, &policy, "alice", &ask, NOW).unwrap_err();
    assert!(e.to_string().contains("hr-read, app-any"), "{e}");
    let named = AccessAsk {
        bundle: None,
        resource: Some("app".into()),
        objects: vec!["public.orders".into()],
        privileges: vec!["select".into(), "update".into()],
        duration: Duration::hours(1),
        reason: "fix".into(),
    };
    let r = request_access(&store, &policy, "alice", &named, NOW).unwrap();
    let e = request_access(
        &store,
        &policy,
        "alice",
        &AccessAsk {
            privileges: vec!["fly".into()],
            ..named.clone()
        },
        NOW,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown privilege `fly`"), "{e}");
    let e = request_access(
        &store,
        &policy,
        "alice",
        &AccessAsk {
            resource: Some("other".into()),
            ..named
        },
        NOW,
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot be requested"), "{e}");
    decide(
        &store,
        &policy,
        "carol",
        &[],
        r.id,
        EndorsementDecision::Approve,
        None,
        NOW,
    )
    .unwrap();
    let grants = active_grants(&store, &policy, NOW).unwrap();
    assert_eq!(
        grants[0].privileges,
        vec![Operation::Read, Operation::Update]
    );
}

#[test]
fn query_approval_is_keyed_by_the_exact_text_and_expires() {
    let (_d, store, policy) = setup();
    let one = held("DELETE FROM t WHERE id = 1");
    assert!(approved_query(&store, &one, "dba", NOW).unwrap().is_none());
    let dba = policy.workflow("dba").unwrap();
    let r = request_query(&store, &policy.workflows, dba, &one, NOW).unwrap();
    // Running it again reuses the pending request.
    assert_eq!(
        request_query(&store, &policy.workflows, dba, &one, NOW)
            .unwrap()
            .id,
        r.id
    );
    decide(
        &store,
        &policy,
        "carol",
        &[],
        r.id,
        EndorsementDecision::Approve,
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        approved_query(&store, &one, "dba", NOW)
            .unwrap()
            .map(|r| r.id),
        Some(r.id)
    );
    // Another constant, another workflow, or after `valid_for` (4h default): not approved.
    assert!(
        approved_query(&store, &held("DELETE FROM t WHERE id = 2"), "dba", NOW)
            .unwrap()
            .is_none()
    );
    assert!(approved_query(&store, &one, "mgmt", NOW).unwrap().is_none());
    assert!(
        approved_query(&store, &one, "dba", NOW + Duration::hours(4))
            .unwrap()
            .is_none()
    );
    assert_ne!(statement_sha256("SELECT 1"), statement_sha256("SELECT  1"));
}

#[test]
fn undecided_requests_expire_and_every_step_is_audited() {
    let (_d, store, policy) = setup();
    let r = request_access(&store, &policy, "alice", &bundle_ask(), NOW).unwrap();
    assert_eq!(inbox(&store, &policy, "carol", &[], NOW).unwrap().len(), 1);
    assert!(inbox(&store, &policy, "alice", &[], NOW)
        .unwrap()
        .is_empty());
    let later = NOW + Duration::hours(2);
    let e = decide(
        &store,
        &policy,
        "carol",
        &[],
        r.id,
        EndorsementDecision::Approve,
        None,
        later,
    )
    .unwrap_err();
    assert!(e.to_string().contains("is expired"), "{e}");
    assert!(inbox(&store, &policy, "carol", &[], later)
        .unwrap()
        .is_empty());
    store.shutdown().unwrap();
    let records = store
        .query_audit(&AuditFilter {
            kind: Some(AuditKindFilter::Workflows),
            ..AuditFilter::default()
        })
        .unwrap();
    let actions: Vec<String> = records
        .iter()
        .rev()
        .map(|r| match &r.event {
            portcullis_store::AuditEvent::Workflow(w) => w.action.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(actions, ["requested", "expired"]);
}

fn actions(store: &Store) -> Vec<(String, String)> {
    store
        .query_audit(&AuditFilter {
            kind: Some(AuditKindFilter::Workflows),
            ..AuditFilter::default()
        })
        .unwrap()
        .iter()
        .rev()
        .map(|r| match &r.event {
            portcullis_store::AuditEvent::Workflow(w) => (w.action.clone(), w.user.clone()),
            _ => Default::default(),
        })
        .collect()
}

/// The events of the notifications in `user`'s inbox, newest first.
fn events_told(store: &Store, user: &str) -> Vec<String> {
    store
        .inbox_notifications(user, false, 100)
        .unwrap()
        .into_iter()
        .map(|n| n.notification.event)
        .collect()
}

fn window(from: Duration, until: Duration) -> ReservationAsk {
    ReservationAsk {
        resource: "prod".into(),
        from: NOW + from,
        until: NOW + until,
        reason: "release 4.2".into(),
    }
}

#[test]
fn an_approved_reservation_covers_exactly_its_window() {
    let (_d, store, policy) = setup();
    let e = reserve(
        &store,
        &policy,
        "alice",
        &[],
        &window(Duration::ZERO, Duration::hours(5)),
        NOW,
    )
    .unwrap_err();
    assert!(e.to_string().contains("at most 14400s"), "{e}");
    let mut other = window(Duration::ZERO, Duration::hours(1));
    other.resource = "app".into();
    let e = reserve(&store, &policy, "alice", &[], &other, NOW).unwrap_err();
    assert!(e.to_string().contains("needs no reservation"), "{e}");
    let e = reserve(
        &store,
        &policy,
        "alice",
        &[],
        &window(Duration::hours(2), Duration::hours(1)),
        NOW,
    )
    .unwrap_err();
    assert!(e.to_string().contains("must end"), "{e}");

    let r = reserve(
        &store,
        &policy,
        "alice",
        &[],
        &window(Duration::hours(1), Duration::hours(3)),
        NOW,
    )
    .unwrap();
    // Undecided when the window closes, it could never be used: it times out by then at the latest.
    assert_eq!(r.expires_at, millis(NOW + Duration::hours(2)));
    let approve = EndorsementDecision::Approve;
    let e = decide(&store, &policy, "alice", &[], r.id, approve, None, NOW).unwrap_err();
    assert!(matches!(e, WorkflowError::SelfEndorsement(_)), "{e}");
    decide(&store, &policy, "carol", &[], r.id, approve, None, NOW).unwrap();
    let approved = decide(&store, &policy, "dave", &[], r.id, approve, None, NOW).unwrap();
    assert_eq!(approved.status, RequestStatus::Approved);
    assert_eq!(approved.valid_until, Some(millis(NOW + Duration::hours(3))));
    let covering = |at| {
        covering_reservation(&store, "alice", "prod", at)
            .unwrap()
            .map(|r| r.id)
    };
    assert_eq!(covering(NOW), None);
    assert_eq!(covering(NOW + Duration::hours(1)), Some(r.id));
    assert_eq!(covering(NOW + Duration::hours(3)), None);
    assert!(
        covering_reservation(&store, "bob", "prod", NOW + Duration::hours(1))
            .unwrap()
            .is_none()
    );
}

#[test]
fn escalation_approvers_decide_only_after_escalate_after() {
    let (_d, store, policy) = setup();
    let r = reserve(
        &store,
        &policy,
        "alice",
        &[],
        &window(Duration::ZERO, Duration::hours(4)),
        NOW,
    )
    .unwrap();
    let approve = EndorsementDecision::Approve;
    let early = NOW + Duration::minutes(59);
    assert!(inbox(&store, &policy, "erin", &[], early)
        .unwrap()
        .is_empty());
    let e = decide(&store, &policy, "erin", &[], r.id, approve, None, early).unwrap_err();
    assert!(
        e.to_string().contains("once pending for 3600s also erin"),
        "{e}"
    );
    let late = NOW + Duration::hours(1);
    assert_eq!(inbox(&store, &policy, "erin", &[], late).unwrap().len(), 1);
    // Escalation tells erin, whom it adds; the original approvers were told at filing.
    assert_eq!(events_told(&store, "erin"), ["escalated"]);
    assert_eq!(events_told(&store, "carol"), ["requested"]);
    let one = decide(&store, &policy, "erin", &[], r.id, approve, None, late).unwrap();
    assert_eq!(one.status, RequestStatus::Pending);
    assert!(one.escalated_at.is_some());
    let two = decide(&store, &policy, "carol", &[], r.id, approve, None, late).unwrap();
    assert_eq!(two.status, RequestStatus::Approved);
    store.shutdown().unwrap();
    let steps: Vec<String> = actions(&store).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        steps,
        ["requested", "escalated", "endorsed", "endorsed", "approved"]
    );
}

#[test]
fn on_timeout_rejects_or_lets_requests_expire() {
    let (_d, store, policy) = setup();
    let strict = reserve(
        &store,
        &policy,
        "alice",
        &[],
        &window(Duration::ZERO, Duration::hours(4)),
        NOW,
    )
    .unwrap();
    let lax = request_access(&store, &policy, "alice", &bundle_ask(), NOW).unwrap();
    // `mgmt` times out after 2h too, but ignores it: the access request expires.
    let concluded = expire_due(&store, &policy.workflows, NOW + Duration::hours(2)).unwrap();
    let statuses: Vec<(i64, RequestStatus)> = concluded.iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(
        statuses,
        [
            (strict.id, RequestStatus::Rejected),
            (lax.id, RequestStatus::Expired)
        ]
    );
    let e = decide(
        &store,
        &policy,
        "carol",
        &[],
        strict.id,
        EndorsementDecision::Approve,
        None,
        NOW + Duration::hours(2),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("is rejected; its decision is final"),
        "{e}"
    );
    // The requester hears how each ended.
    assert_eq!(events_told(&store, "alice"), ["expired", "rejected"]);
    store.shutdown().unwrap();
    let steps = actions(&store);
    assert!(
        steps.contains(&("rejected".into(), "portcullis".into())),
        "{steps:?}"
    );
    assert!(
        steps.contains(&("expired".into(), "portcullis".into())),
        "{steps:?}"
    );
}

#[test]
fn connection_approval_lasts_valid_for() {
    let (_d, store, policy) = setup();
    let held = HeldConnection {
        user: "alice",
        resource: "app",
        reason: "approval required by rule `prod-login`",
        session_id: "s1",
    };
    let dba = policy.workflow("dba").unwrap();
    assert!(approved_connection(&store, &held, "dba", NOW)
        .unwrap()
        .is_none());
    let r = request_connection(&store, &policy.workflows, dba, &held, NOW).unwrap();
    assert_eq!(
        request_connection(&store, &policy.workflows, dba, &held, NOW)
            .unwrap()
            .id,
        r.id
    );
    decide(
        &store,
        &policy,
        "carol",
        &[],
        r.id,
        EndorsementDecision::Approve,
        None,
        NOW,
    )
    .unwrap();
    let found = |at| {
        approved_connection(&store, &held, "dba", at)
            .unwrap()
            .map(|r| r.id)
    };
    assert_eq!(found(NOW), Some(r.id));
    assert_eq!(found(NOW + Duration::hours(4)), None);
    // A statement approval is not a connection approval.
    assert!(approved_query(&store, &held_stmt(), "dba", NOW)
        .unwrap()
        .is_none());
}

fn held_stmt() -> HeldStatement<'static> {
    held("DELETE FROM t WHERE id = 1")
}
