//! Cedar permit/forbid statements: the seed 002 use cases, fail-closed evaluation, located load errors,
//! the session cache.

use time::macros::datetime;

use crate::cedar::vocabulary::Vocabulary;
use crate::tests::{comps, load, load_err, MONDAY_10};
use crate::*;

const DEV_GRANT: &str = "
grants:
  - to: {role: developers}
    resource: prod
    objects: ['*']
    privileges: [all]
  - to: {user: carol}
    resource: prod
    objects: ['*']
    privileges: [all]
";

fn with_cedar(grants: &str, cedar: &str) -> String {
    let indented: String = cedar.lines().map(|l| format!("  {l}\n")).collect();
    // The workflows these tests' `@approval`s name: a policy must define every workflow it uses.
    let workflows = "workflows:\n  - {name: Require management approval, approvers: {roles: [managers]}}\n  - {name: payroll, approvers: {roles: [payroll]}}\n  - {name: w, approvers: {users: [carol]}}\n";
    format!("{grants}cedar: |\n{indented}{workflows}")
}

fn dev() -> Context {
    Context::new("dave", "prod").with_roles(["developers"])
}

fn policy_ids(d: &[DecidingPolicy]) -> Vec<&str> {
    d.iter().map(|p| p.id.as_str()).collect()
}

#[test]
fn the_embedded_schema_is_valid() {
    assert!(Vocabulary::get().is_ok(), "{:?}", Vocabulary::get().err());
}

const JUSTIFY_AND_MFA: &str = r#"@id("dev-prod")
@mfa
@justification("Why are you performing this action?")
permit(principal in Role::"developers", action, resource in Resource::"prod");
"#;

#[test]
fn seed_002_justify_and_mfa_reports_both_then_allows() {
    let p = load(&with_cedar(DEV_GRANT, JUSTIFY_AND_MFA));
    let sel = comps("SELECT * FROM hr.employees");
    let d = p.evaluate_statement(&dev(), &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert_eq!(
        d.reason,
        "MFA required by permit `dev-prod`; justification required by permit `dev-prod`: Why are you performing this action?"
    );
    assert_eq!(d.requirements.len(), 2);
    assert!(d.requirements.iter().all(|r| !r.met));
    assert_eq!(policy_ids(&d.policies), ["dev-prod"]);
    // Both requests matched it: the object and the statement as a whole.
    assert_eq!(d.policies[0].components, [0, 1]);

    let only_mfa = dev().with_mfa_verified(true);
    let d = p.evaluate_statement(&only_mfa, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "justification required by permit `dev-prod`: Why are you performing this action?"
    );

    let done = only_mfa.with_justification("incident 4711");
    let d = p.evaluate_statement(&done, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert!(d.requirements.iter().all(|r| r.met));
    assert!(
        d.reason.contains("permit requirements met: `dev-prod`"),
        "{}",
        d.reason
    );

    // The same permit applies to connecting.
    let c = p.evaluate_connection(ConnectionStage::Post, &dev(), MONDAY_10);
    assert_eq!(c.verdict, Verdict::Deny);
    assert!(
        c.reason.starts_with("MFA required by permit `dev-prod`"),
        "{}",
        c.reason
    );
    // Another resource: the permit does not match, grants decide.
    let staging = Context::new("dave", "staging").with_roles(["developers"]);
    let d = p.evaluate_statement(&staging, &sel, MONDAY_10);
    assert!(d.requirements.is_empty());
    assert_eq!(d.reason, "dave lacks SELECT on hr.employees in staging");
}

const APPROVAL: &str = r#"@id("alice-prod")
@approval("Require management approval")
permit(principal == User::"alice", action, resource in Resource::"prod");
"#;

#[test]
fn seed_002_approval_permit_waits_then_authorises_without_a_grant() {
    let p = load(&with_cedar(DEV_GRANT, APPROVAL));
    let alice = Context::new("alice", "prod");
    let sel = comps("SELECT * FROM hr.employees");
    let d = p.evaluate_statement(&alice, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::RequireApproval, "{}", d.reason);
    assert_eq!(
        d.reason,
        "approval via workflow `Require management approval` required by permit `alice-prod`"
    );
    // Alice holds no grant, but the permit covers the object: no missing grant is reported.
    assert!(d.missing_grants.is_empty());
    let approved = alice.clone().with_approval("Require management approval");
    let d = p.evaluate_statement(&approved, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    // Another workflow's approval does not count.
    let other = alice.clone().with_approval("something else");
    assert_eq!(
        p.evaluate_statement(&other, &sel, MONDAY_10).verdict,
        Verdict::RequireApproval
    );
    // Connecting: no grant on prod, but the approved permit covers `connect`.
    let c = p.evaluate_connection(ConnectionStage::Post, &alice, MONDAY_10);
    assert_eq!(c.verdict, Verdict::RequireApproval, "{}", c.reason);
    let c = p.evaluate_connection(ConnectionStage::Post, &approved, MONDAY_10);
    assert_eq!(c.verdict, Verdict::Allow, "{}", c.reason);
    // Bob: no permit, no grant.
    let bob = Context::new("bob", "prod");
    let d = p.evaluate_statement(&bob, &sel, MONDAY_10);
    assert_eq!(d.reason, "bob lacks SELECT on hr.employees in prod");
    let c = p.evaluate_connection(ConnectionStage::Post, &bob, MONDAY_10);
    assert_eq!(c.reason, "bob has no active grant on prod");
}

const FORBID_LOW_TRUST: &str = r#"@id("no-low-trust")
@logout("untrusted device or unknown location")
forbid(principal, action, resource)
when { context.device_trust == DeviceTrust::"low" || context.location == "unknown" };
"#;

#[test]
fn seed_002_forbid_low_trust_or_unknown_location_logs_out() {
    let p = load(&with_cedar(DEV_GRANT, FORBID_LOW_TRUST));
    let sel = comps("SELECT * FROM hr.employees");
    let trusted = dev()
        .with_location(Observed::Known("DE".into()))
        .with_device_trust(Observed::Known(DeviceTrust::High));
    let d = p.evaluate_statement(&trusted, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert!(d.policies.is_empty());

    for ctx in [
        trusted
            .clone()
            .with_device_trust(Observed::Known(DeviceTrust::Low)),
        trusted.clone().with_location(Observed::Unknown),
    ] {
        let d = p.evaluate_statement(&ctx, &sel, MONDAY_10);
        assert_eq!((d.verdict, d.logout), (Verdict::Deny, true));
        assert_eq!(
            d.reason,
            "policy `no-low-trust` forces logout: untrusted device or unknown location"
        );
        assert_eq!(policy_ids(&d.policies), ["no-low-trust"]);
        assert_eq!(d.policies[0].effect, CedarEffect::Forbid);
        // Statements touching no object are forbidden too (the `statement` action).
        let d = p.evaluate_statement(&ctx, &comps("SET search_path = hr"), MONDAY_10);
        assert_eq!((d.verdict, d.logout), (Verdict::Deny, true));
        let c = p.evaluate_connection(ConnectionStage::Post, &ctx, MONDAY_10);
        assert_eq!((c.verdict, c.logout), (Verdict::Deny, true));
    }
    // Before login the device trust is not known: this forbid waits for post-connection.
    let mut pre = trusted.clone().with_location(Observed::Unknown);
    pre.user = None;
    pre.roles.clear();
    let c = p.evaluate_connection(ConnectionStage::Pre, &pre, MONDAY_10);
    assert_eq!(c.verdict, Verdict::Allow, "{}", c.reason);
}

#[test]
fn forbids_on_location_alone_apply_before_login() {
    let p = load(&with_cedar(
        DEV_GRANT,
        r#"@id("no-unknown-place")
@error("connections from unknown locations are refused")
forbid(principal, action == Action::"connect", resource)
when { context.location == "unknown" };
"#,
    ));
    let mut pre = Context::new("x", "prod");
    pre.user = None;
    let c = p.evaluate_connection(ConnectionStage::Pre, &pre, MONDAY_10);
    assert_eq!((c.verdict, c.logout), (Verdict::Deny, false));
    assert_eq!(
        c.reason,
        "forbidden by policy `no-unknown-place`: connections from unknown locations are refused"
    );
    let known = pre.with_location(Observed::Known("FR".into()));
    assert_eq!(
        p.evaluate_connection(ConnectionStage::Pre, &known, MONDAY_10)
            .verdict,
        Verdict::Allow
    );
}

const LOW_TRUST_MFA: &str = r#"@id("low-trust-mfa")
@mfa("Low device trust detected")
@justification("Why are you performing this action from a device with a low trust score?")
permit(principal, action, resource)
when { context.device_trust == DeviceTrust::"low" };
"#;

#[test]
fn seed_002_low_trust_access_with_mfa_and_justification() {
    let p = load(&with_cedar(DEV_GRANT, LOW_TRUST_MFA));
    let sel = comps("SELECT * FROM hr.employees");
    let high = dev().with_device_trust(Observed::Known(DeviceTrust::High));
    let d = p.evaluate_statement(&high, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.requirements.is_empty() && d.policies.is_empty());

    let low = dev().with_device_trust(Observed::Known(DeviceTrust::Low));
    let d = p.evaluate_statement(&low, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "MFA required by permit `low-trust-mfa`: Low device trust detected; justification required by permit `low-trust-mfa`: Why are you performing this action from a device with a low trust score?"
    );
    let kinds: Vec<&str> = d
        .requirements
        .iter()
        .map(|r| r.requirement.kind())
        .collect();
    assert_eq!(kinds, ["mfa", "justification"]);
    let met = low.with_mfa_verified(true).with_justification("on call");
    let d = p.evaluate_statement(&met, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    // Requirements are on top of grants: a covered object without a grant is fine only via the permit.
    let eve = Context::new("eve", "prod")
        .with_device_trust(Observed::Known(DeviceTrust::Low))
        .with_mfa_verified(true)
        .with_justification("x");
    assert_eq!(
        p.evaluate_statement(&eve, &sel, MONDAY_10).verdict,
        Verdict::Allow
    );
}

#[test]
fn a_forbid_that_fails_to_evaluate_still_denies() {
    let p = load(&with_cedar(
        DEV_GRANT,
        r#"@id("overflowing")
forbid(principal, action, resource)
when { context.hour + 9223372036854775807 > 0 };
"#,
    ));
    // At 00:xx the sum does not overflow and the condition holds; at 10:00 it overflows.
    let d = p.evaluate_statement(&dev(), &comps("SELECT 1"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason
            .starts_with("forbid `overflowing` could not be evaluated (integer overflow"),
        "{}",
        d.reason
    );
    assert!(d.reason.ends_with("denied to fail closed"), "{}", d.reason);
    assert!(d.policies[0].error.is_some());
}

#[test]
fn a_permit_that_fails_to_evaluate_imposes_its_requirements_but_covers_nothing() {
    let p = load(&with_cedar(
        "",
        r#"@id("broken")
@mfa
permit(principal, action, resource)
when { context.hour + 9223372036854775807 > 0 };
"#,
    ));
    let ctx = Context::new("alice", "prod").with_mfa_verified(true);
    let d = p.evaluate_statement(&ctx, &comps("SELECT * FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, "alice lacks SELECT on hr.employees in prod");
    let d = p.evaluate_statement(
        &Context::new("alice", "prod"),
        &comps("SELECT 1"),
        MONDAY_10,
    );
    assert!(
        d.reason
            .starts_with("MFA required by permit `broken` (its condition could not be evaluated"),
        "{}",
        d.reason
    );
}

#[test]
fn actions_groups_and_the_object_hierarchy() {
    let p = load(&with_cedar(
        DEV_GRANT,
        r#"@id("no-hr-ddl")
@error("HR schema changes go through the change board")
forbid(principal, action in Action::"ddl", resource in Schema::"hr");

@id("salaries")
@approval("payroll")
permit(principal, action == Action::"select", resource == Table::"hr.salaries");

@id("copy-out-mfa")
@mfa
permit(principal, action == Action::"copy-out", resource)
when { resource.schema == "hr" };
"#,
    ));
    let d = p.evaluate_statement(&dev(), &comps("DROP TABLE hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "forbidden by policy `no-hr-ddl`: HR schema changes go through the change board"
    );
    assert_eq!(
        p.evaluate_statement(&dev(), &comps("DROP TABLE public.orders"), MONDAY_10)
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate_statement(&dev(), &comps("TRUNCATE hr.employees"), MONDAY_10)
            .verdict,
        Verdict::Deny
    );
    assert_eq!(
        p.evaluate_statement(&dev(), &comps("SELECT * FROM hr.employees"), MONDAY_10)
            .verdict,
        Verdict::Allow
    );
    let d = p.evaluate_statement(
        &dev(),
        &[
            Component::Object(ObjectComponent {
                schema: "hr".into(),
                name: "salaries".into(),
                kind: portcullis_sql::ObjectKind::Relation,
                operation: portcullis_sql::Operation::Read,
                columns: vec![],
            }),
            Component::Statement(StatementComponent {
                kind: portcullis_sql::StatementKind::Select,
                text: "SELECT * FROM hr.salaries".into(),
                opaque: None,
            }),
        ],
        MONDAY_10,
    );
    assert_eq!(d.verdict, Verdict::RequireApproval, "{}", d.reason);
    assert_eq!(d.policies[0].components, [0]);
    let d = p.evaluate_statement(&dev(), &comps("COPY hr.employees TO STDOUT"), MONDAY_10);
    assert_eq!(d.reason, "MFA required by permit `copy-out-mfa`");
}

#[test]
fn client_address_is_optional_and_must_be_tested() {
    let p = load(&with_cedar(
        DEV_GRANT,
        r#"@id("office-only")
forbid(principal, action, resource)
unless { context has client_addr && context.client_addr.isInRange(ip("10.0.0.0/8")) };
"#,
    ));
    let sel = comps("SELECT 1");
    assert_eq!(
        p.evaluate_statement(&dev(), &sel, MONDAY_10).verdict,
        Verdict::Deny
    );
    for addr in ["10.1.2.3", "::ffff:10.1.2.3"] {
        let inside = dev().with_addr(addr.parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            p.evaluate_statement(&inside, &sel, MONDAY_10).verdict,
            Verdict::Allow,
            "{addr}"
        );
    }
    let e = load_err(&with_cedar(
        "",
        r#"@id("office-only")
forbid(principal, action, resource)
unless { context.client_addr.isInRange(ip("10.0.0.0/8")) };
"#,
    ));
    assert!(e.starts_with("policy.yaml:4:12: Cedar policy `office-only`: unable to guarantee safety of access to optional attribute `client_addr`"), "{e}");
    assert!(e.contains("context has client_addr"), "{e}");
}

#[test]
fn time_context_is_utc() {
    let p = load(&with_cedar(
        DEV_GRANT,
        r#"@id("weekends")
forbid(principal, action, resource)
when { [Weekday::"sat", Weekday::"sun"].contains(context.weekday) || context.hour >= 22 || context.date >= 20240301 };
"#,
    ));
    let sel = comps("SELECT 1");
    let at = |t| p.evaluate_statement(&dev(), &sel, t).verdict;
    assert_eq!(at(MONDAY_10), Verdict::Allow);
    assert_eq!(at(datetime!(2024-01-06 10:00 UTC)), Verdict::Deny);
    assert_eq!(at(datetime!(2024-01-01 23:30 +02:00)), Verdict::Allow);
    assert_eq!(at(datetime!(2024-01-01 22:30 UTC)), Verdict::Deny);
    assert_eq!(at(datetime!(2024-03-01 10:00 UTC)), Verdict::Deny);
}

#[test]
fn without_a_user_forbids_about_the_principal_apply() {
    let p = load(&with_cedar(
        DEV_GRANT,
        r#"@id("no-mallory")
forbid(principal == User::"mallory", action, resource);
"#,
    ));
    let mut anonymous = dev();
    anonymous.user = None;
    let d = p.evaluate_statement(&anonymous, &comps("SELECT 1"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("the user is not known"), "{}", d.reason);
    assert_eq!(
        p.evaluate_statement(&dev(), &comps("SELECT 1"), MONDAY_10)
            .verdict,
        Verdict::Allow
    );
}

#[test]
fn session_cache_serves_repeats_and_starts_over_when_context_or_policy_changes() {
    let yaml = with_cedar(DEV_GRANT, &format!("{JUSTIFY_AND_MFA}\n{FORBID_LOW_TRUST}"));
    let p = load(&yaml);
    let mut cache = SessionCache::new();
    let ctx = dev().with_location(Observed::Known("DE".into()));
    let sel = comps("SELECT * FROM hr.employees");
    let first = p.evaluate_statement_cached(&ctx, &sel, MONDAY_10, &mut cache);
    assert_eq!((cache.hits(), cache.misses()), (0, 2));
    let again = p.evaluate_statement_cached(&ctx, &sel, MONDAY_10, &mut cache);
    assert_eq!((cache.hits(), cache.misses()), (2, 2));
    assert_eq!(first, again);
    assert_eq!(first, p.evaluate_statement(&ctx, &sel, MONDAY_10));
    // Requirements are checked every time, not cached.
    let met = ctx
        .clone()
        .with_mfa_verified(true)
        .with_justification("why");
    let d = p.evaluate_statement_cached(&met, &sel, MONDAY_10, &mut cache);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert_eq!(cache.misses(), 2);
    // A context change Cedar can see starts over.
    let low = met.with_device_trust(Observed::Known(DeviceTrust::Low));
    let d = p.evaluate_statement_cached(&low, &sel, MONDAY_10, &mut cache);
    assert!(d.logout);
    assert_eq!(cache.misses(), 4);
    // So does the next minute, and another compiled policy.
    p.evaluate_statement_cached(&low, &sel, datetime!(2024-01-01 10:01 UTC), &mut cache);
    assert_eq!(cache.misses(), 6);
    let reloaded = load(&yaml);
    reloaded.evaluate_statement_cached(&low, &sel, datetime!(2024-01-01 10:01 UTC), &mut cache);
    assert_eq!(cache.misses(), 8);
    // Connection answers are cached too.
    reloaded.evaluate_connection_cached(
        ConnectionStage::Post,
        &low,
        datetime!(2024-01-01 10:01 UTC),
        &mut cache,
    );
    reloaded.evaluate_connection_cached(
        ConnectionStage::Post,
        &low,
        datetime!(2024-01-01 10:01 UTC),
        &mut cache,
    );
    assert_eq!((cache.misses(), cache.hits()), (9, 5));
}

#[test]
fn a_permit_without_requirements_is_rejected() {
    let e = load_err(&with_cedar(
        "",
        "@id(\"plain\")\npermit(principal, action, resource);\n",
    ));
    assert!(
        e.starts_with("policy.yaml:3:3: a permit needs at least one requirement: add @mfa"),
        "{e}"
    );
    assert!(e.contains("write a grant"), "{e}");
}

#[test]
fn cedar_syntax_errors_point_into_the_yaml_file() {
    let yaml = "grants: []\ncedar: |\n  @id(\"a\")\n  forbid(principal, action, resource)\n  when { context.location = \"DE\" };\n";
    let e = load_err(yaml);
    assert_eq!(
        e,
        "policy.yaml:5:10: Cedar syntax error: '=' is not a valid operator in Cedar; try using '==' instead"
    );
    // Not a block scalar: the key's line, and the position inside the text.
    let e = load_err("cedar: \"forbid(principal, action, resource) when { 1 = 1 };\"\n");
    assert!(e.starts_with("policy.yaml:1: Cedar syntax error"), "{e}");
    assert!(e.contains("line 1, column 44 of the cedar text"), "{e}");
}

#[test]
fn schema_validation_errors_are_reported_once_with_a_hint() {
    let yaml = with_cedar(
        "",
        "@id(\"typo\")\nforbid(principal, action, resource)\nwhen { context.locaton == \"DE\" || context.device_trust == DeviceTrust::\"lwo\" };\n",
    );
    let e = load_err(&yaml);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert_eq!(lines[0], "policy.yaml:4:10: Cedar policy `typo`: attribute `locaton` in context not found; did you mean `location`?");
    assert!(lines[1].starts_with("policy.yaml:4:61: Cedar policy `typo`: entity `DeviceTrust::\"lwo\"` is of an enumerated entity type"), "{e}");
    assert!(lines[1].contains("\"low\""), "{e}");
    let e = load_err(&with_cedar(
        "",
        "@id(\"x\")\nforbid(principal, action == Action::\"selct\", resource);\n",
    ));
    assert!(e.contains("unrecognized action `Action::\"selct\"`"), "{e}");
}

#[test]
fn annotation_errors() {
    for (cedar, expect) in [
        ("@id(\"a\") @logout permit(principal, action, resource);", "policy.yaml:2:12: `@logout` applies to forbid policies only"),
        ("@id(\"a\") @mfa forbid(principal, action, resource);", "policy.yaml:2:12: `@mfa` applies to permit policies only"),
        ("@id(\"a\") @mfaa permit(principal, action, resource);", "policy.yaml:2:12: unknown annotation `@mfaa`"),
        ("@mfa permit(principal, action, resource);", "policy.yaml:2:3: this Cedar policy has no `@id`"),
        ("@id(\"a\") @approval permit(principal, action, resource);", "`@approval` needs the workflow's name"),
        ("@id(\"a\") @error forbid(principal, action, resource);", "`@error` needs the message"),
        ("@id(\"a\") forbid(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);", "policy.yaml:3:3: duplicate Cedar policy id `a`"),
        ("@id(\"a\") permit(principal == ?principal, action, resource);", "templates"),
    ] {
        let e = load_err(&with_cedar("", cedar));
        assert!(e.contains(expect), "expected {expect:?} in {e}");
    }
    let e = load_err(&format!(
        "rules:\n  - id: r1\n    action: audit\n{}",
        with_cedar("", "@id(\"r1\") forbid(principal, action, resource);")
    ));
    assert!(e.contains("Cedar policy id `r1` is also a rule id"), "{e}");
    // An impossible policy is a mistake, not something to load silently.
    let e = load_err(&with_cedar(
        "",
        "@id(\"never\") forbid(principal, action, resource) when { 1 > 2 && false };",
    ));
    assert!(e.contains("policy is impossible"), "{e}");
}

#[test]
fn loaded_statements_describe_each_policy() {
    let policy = Policy::from_yaml(
        &with_cedar(DEV_GRANT, &format!("{JUSTIFY_AND_MFA}\n{FORBID_LOW_TRUST}")),
        "p.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = &policy.cedar.statements;
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].id.as_str(), s[0].effect, s[0].line),
        ("dev-prod", CedarEffect::Permit, Some(12))
    );
    assert_eq!(
        s[0].requirements,
        [
            Requirement::Mfa { prompt: None },
            Requirement::Justification {
                prompt: Some("Why are you performing this action?".into())
            }
        ]
    );
    assert_eq!(
        s[1].logout.as_deref(),
        Some("untrusted device or unknown location")
    );
    assert_eq!(CompiledPolicy::compile(&policy).cedar().len(), 2);
}

/// The engine decides scopes itself and asks Cedar only about conditions; this checks it finds exactly
/// the policies plain Cedar finds with a full entity store, over many requests.
#[test]
fn scope_prefilter_agrees_with_plain_cedar() {
    use std::str::FromStr;

    use cedar_policy::{Authorizer, Decision, PolicySet};

    use crate::cedar::engine::{self, Forbids};
    use crate::cedar::request::{Session, Target};
    use crate::cedar::vocabulary::CedarAction;

    let text = r#"@id("f-alice") forbid(principal == User::"alice", action, resource);
@id("f-dev-write-hr") forbid(principal in Role::"dev", action in Action::"write", resource in Schema::"hr");
@id("f-select-prod-tables") forbid(principal is User, action == Action::"select", resource is Table in Resource::"prod");
@id("f-drop-emp") forbid(principal, action in [Action::"drop", Action::"ddl"], resource == Table::"hr.employees") when { context.hour > 3 };
@id("f-ops") forbid(principal is User in Role::"ops", action in Action::"read", resource);
@id("f-staging") forbid(principal, action, resource in Resource::"staging") when { context.location == "unknown" };
@id("f-fn") forbid(principal, action == Action::"execute", resource is Function) when { resource.name == "f" };
@id("p-hr") @mfa permit(principal, action in Action::"sql", resource in Resource::"prod") when { resource is Table && resource.schema == "hr" };
@id("p-connect") @mfa permit(principal in Role::"dev", action == Action::"connect", resource == Resource::"prod");
@id("p-schema") @mfa permit(principal, action, resource is Schema);
@id("p-ops") @approval("w") permit(principal, action == Action::"statement", resource) when { principal in Role::"ops" };
@id("p-role-obj") @mfa permit(principal, action, resource is Object) when { resource.kind == "role" && action in Action::"ddl" };
"#;
    let policy =
        Policy::from_yaml(&with_cedar("", text), "p.yaml").unwrap_or_else(|e| panic!("{e}"));
    let sets = policy
        .cedar
        .sets
        .as_ref()
        .unwrap_or_else(|| panic!("no sets"));
    let ids: Vec<&str> = policy
        .cedar
        .statements
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let parsed = PolicySet::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let (mut forbids, mut permits) = (PolicySet::new(), PolicySet::new());
    for p in parsed.policies() {
        let id = p.annotation("id").unwrap_or_default();
        let renamed = p.new_id(cedar_policy::PolicyId::new(id));
        let added = match p.effect() {
            cedar_policy::Effect::Forbid => forbids.add(renamed),
            cedar_policy::Effect::Permit => permits.add(renamed),
        };
        added.unwrap_or_else(|e| panic!("{e}"));
    }
    let vocabulary = Vocabulary::get().unwrap_or_else(|e| panic!("{e}"));
    let objects: Vec<ObjectComponent> = [
        ("hr", "employees", portcullis_sql::ObjectKind::Relation),
        ("public", "orders", portcullis_sql::ObjectKind::Relation),
        ("", "hr", portcullis_sql::ObjectKind::Schema),
        ("hr", "f", portcullis_sql::ObjectKind::Function),
        ("", "x", portcullis_sql::ObjectKind::Role),
        ("", "t", portcullis_sql::ObjectKind::Relation),
    ]
    .into_iter()
    .map(|(schema, name, kind)| ObjectComponent {
        schema: schema.into(),
        name: name.into(),
        kind,
        operation: portcullis_sql::Operation::Read,
        columns: vec![],
    })
    .collect();
    let mut actions = vec![CedarAction::Connect, CedarAction::Statement];
    actions.extend(
        portcullis_sql::Operation::ALL
            .iter()
            .map(|op| CedarAction::Op(*op)),
    );
    let mut compared = 0;
    let mut matched = [0usize; 2];
    for (user, roles) in [
        ("alice", vec![]),
        ("bob", vec!["dev"]),
        ("carol", vec!["ops", "dev"]),
    ] {
        for resource in ["prod", "staging"] {
            let ctx = Context::new(user, resource).with_roles(roles.clone());
            let session = Session::new(vocabulary, &ctx, MONDAY_10);
            let mut targets = vec![Target::Resource];
            targets.extend(objects.iter().map(Target::Object));
            for &action in &actions {
                for &target in &targets {
                    let ours = engine::evaluate(
                        sets,
                        Forbids::All,
                        &session,
                        action,
                        target,
                        &mut engine::Memo::default(),
                    );
                    let name = |h: &engine::Hit| ids[h.position].to_owned();
                    let ours_f: Vec<String> = ours.forbids.iter().map(name).collect();
                    let ours_p: Vec<String> = ours.permits.iter().map(name).collect();
                    let resolved = session.resolve(target);
                    let (request, store) = session
                        .request(
                            action,
                            &resolved,
                            crate::cedar::policies::Needs {
                                principal: true,
                                action: true,
                                resource: true,
                            },
                        )
                        .unwrap_or_else(|e| panic!("{e}"));
                    // The reference store is complete: every action with its groups, the schema.
                    let mut extra: Vec<cedar_policy::Entity> = store.iter().cloned().collect();
                    if let Target::Object(o) = target {
                        if !o.schema.is_empty() {
                            extra.push(cedar_policy::Entity::new_no_attrs(
                                Vocabulary::uid(&vocabulary.schema_type, &o.schema),
                                std::collections::HashSet::from([Vocabulary::uid(
                                    &vocabulary.resource,
                                    resource,
                                )]),
                            ));
                        }
                    }
                    let actions = vocabulary
                        .schema
                        .action_entities()
                        .unwrap_or_else(|e| panic!("{e}"));
                    let full = actions
                        .add_entities(extra, None)
                        .unwrap_or_else(|e| panic!("{e}"));
                    let plain = |set: &PolicySet, decided: Decision| {
                        let r = Authorizer::new().is_authorized(&request, set, &full);
                        assert_eq!(r.diagnostics().errors().count(), 0);
                        let mut v: Vec<String> = if r.decision() == decided {
                            r.diagnostics().reason().map(|id| id.to_string()).collect()
                        } else {
                            vec![]
                        };
                        v.sort_by_key(|id| ids.iter().position(|i| i == id));
                        v
                    };
                    let what = format!("{user} {resource} {} {}", action.name(), resolved.uid);
                    assert_eq!(
                        ours_f,
                        plain(&forbids, Decision::Deny),
                        "forbids for {what}"
                    );
                    assert_eq!(
                        ours_p,
                        plain(&permits, Decision::Allow),
                        "permits for {what}"
                    );
                    compared += 1;
                    matched[0] += ours_f.len();
                    matched[1] += ours_p.len();
                }
            }
        }
    }
    assert_eq!(compared, 6 * 22 * 7);
    // Both effects matched often enough for the comparison to mean something.
    assert!(matched[0] > 100 && matched[1] > 30, "{matched:?}");
}

#[test]
fn compiled_policies_are_shared_and_caches_move_with_sessions() {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<CompiledPolicy>();
    movable::<SessionCache>();
}

#[test]
fn the_examples_in_cedar_md_load() {
    let doc = include_str!("../../CEDAR.md");
    let mut cedar = String::new();
    let mut blocks = 0;
    for block in doc.split("```cedar\n").skip(1) {
        cedar.push_str(block.split("```").next().unwrap_or(""));
        cedar.push('\n');
        blocks += 1;
    }
    assert!(blocks >= 5);
    let yaml = with_cedar("", &cedar);
    let policy = Policy::from_yaml(&yaml, "CEDAR.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.cedar.len(), 8);
    // The YAML example at the top loads too.
    let top = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or("");
    let policy = Policy::from_yaml(top, "CEDAR.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.cedar.len(), 2);
}
