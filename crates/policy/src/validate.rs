//! Validation: scalar parsers (each error says what a valid value looks like) and the checks that span a
//! whole grant or rule. Called while deserialising so errors keep the offending node's position.

use std::net::IpAddr;

use portcullis_sql::{Operation, StatementKind};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset, Weekday};

use crate::context::DeviceTrust;
use crate::model::{
    Action, Cidr, Grant, Rule, Severity, Stage, TextRegex, TimeWindow, When, DEFAULT_WORKFLOW,
};
use crate::pattern::ObjectPattern;
use crate::yaml::{RawGrant, RawRule, RawTime, RawWhen};

/// Upper bound on a compiled `text_regex`, so a policy cannot make the engine allocate without bound.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// First words of statement tags the analyser reports as `Other` (`CREATE ROLE`, `ALTER SYSTEM`, ...).
const OTHER_TAG_VERBS: &[&str] = &[
    "CREATE", "ALTER", "DROP", "IMPORT", "REASSIGN", "SECURITY", "LOAD", "REFRESH",
];

/// A value that can be parsed from one scalar of a policy file.
pub(crate) trait FromScalar: Sized {
    /// What a valid value looks like, for serde's "expected ..." messages.
    const EXPECTING: &'static str;
    /// Parses `s`; the error says how to fix it.
    fn from_scalar(s: &str) -> Result<Self, String>;
}

fn one_of(what: &str, value: &str, known: &[&str]) -> String {
    format!("unknown {what} `{value}`; use one of: {}", known.join(", "))
}

impl FromScalar for Operation {
    const EXPECTING: &'static str = "an operation name";
    fn from_scalar(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("select") {
            return Ok(Operation::Read);
        }
        Operation::from_tag(s).ok_or_else(|| {
            let known: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
            one_of("operation", s, &known)
        })
    }
}

/// One privilege name; `all` stands for every operation.
pub(crate) struct Privileges(pub Vec<Operation>);

impl FromScalar for Privileges {
    const EXPECTING: &'static str = "a privilege name";
    fn from_scalar(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self(Operation::ALL.to_vec()));
        }
        match Operation::from_scalar(s) {
            Ok(op) => Ok(Self(vec![op])),
            Err(_) => {
                let mut known = vec!["select", "all"];
                known.extend(
                    Operation::ALL
                        .iter()
                        .filter(|o| **o != Operation::Read)
                        .map(|o| o.as_str()),
                );
                Err(one_of("privilege", s, &known))
            }
        }
    }
}

impl FromScalar for StatementKind {
    const EXPECTING: &'static str = "a statement kind";
    fn from_scalar(s: &str) -> Result<Self, String> {
        let kind = StatementKind::from_tag(s);
        match &kind {
            StatementKind::Other(tag) => {
                let verb = tag.split(' ').next().unwrap_or("");
                // A statement type the analyser refuses is named by its parse node (`ReturnStmt`), so
                // an explicit `allow` rule can let it through.
                if (tag.contains(' ') && OTHER_TAG_VERBS.contains(&verb))
                    || kind.is_unanalysed_node()
                {
                    Ok(kind)
                } else {
                    let known: Vec<&str> =
                        StatementKind::KNOWN.iter().map(|k| k.as_str()).collect();
                    Err(format!(
                        "unknown statement kind `{s}`; use a command tag such as {} (or `CREATE ROLE`, `ALTER SYSTEM`, ...)",
                        known.join(", ")
                    ))
                }
            }
            _ => Ok(kind),
        }
    }
}

impl FromScalar for ObjectPattern {
    const EXPECTING: &'static str = "an object pattern";
    fn from_scalar(s: &str) -> Result<Self, String> {
        ObjectPattern::parse(s)
    }
}

impl FromScalar for Cidr {
    const EXPECTING: &'static str = "an address range";
    fn from_scalar(s: &str) -> Result<Self, String> {
        let hint = || {
            format!("invalid address range `{s}`; write e.g. `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`")
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| hint())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(hint)?,
        };
        let cidr = Cidr { addr, prefix };
        let network = match addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        };
        if network != addr {
            return Err(format!(
                "address range `{s}` has host bits set; did you mean `{network}/{prefix}`?"
            ));
        }
        Ok(cidr)
    }
}

/// A time of day, minutes after midnight (`24:00` allowed as an end).
pub(crate) struct Clock(pub u16);

impl FromScalar for Clock {
    const EXPECTING: &'static str = "a time of day HH:MM";
    fn from_scalar(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid time of day `{s}`; write HH:MM, 24-hour, e.g. `09:00` or `18:30`");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(Clock(h * 60 + m))
    }
}

impl FromScalar for UtcOffset {
    const EXPECTING: &'static str = "a UTC offset";
    fn from_scalar(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid zone `{s}`; write `UTC` or a fixed offset such as `+02:00` or `-05:30` (named zones are not supported)")
        };
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Ok(UtcOffset::UTC);
        }
        let (sign, rest) = if let Some(rest) = s.strip_prefix('+') {
            (1i8, rest)
        } else if let Some(rest) = s.strip_prefix('-') {
            (-1i8, rest)
        } else {
            return Err(bad());
        };
        let Clock(minutes) = Clock::from_scalar(rest).map_err(|_| bad())?;
        let h = i8::try_from(minutes / 60).map_err(|_| bad())?;
        let m = i8::try_from(minutes % 60).map_err(|_| bad())?;
        UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
    }
}

impl FromScalar for Weekday {
    const EXPECTING: &'static str = "a day of the week";
    fn from_scalar(s: &str) -> Result<Self, String> {
        const DAYS: [(&str, Weekday); 7] = [
            ("mon", Weekday::Monday),
            ("tue", Weekday::Tuesday),
            ("wed", Weekday::Wednesday),
            ("thu", Weekday::Thursday),
            ("fri", Weekday::Friday),
            ("sat", Weekday::Saturday),
            ("sun", Weekday::Sunday),
        ];
        let lower = s.to_ascii_lowercase();
        DAYS.iter()
            .find(|(short, day)| lower == *short || lower == day.to_string().to_ascii_lowercase())
            .map(|(_, d)| *d)
            .ok_or_else(|| one_of("day", s, &["mon", "tue", "wed", "thu", "fri", "sat", "sun"]))
    }
}

/// An RFC 3339 instant.
pub(crate) struct Instant(pub OffsetDateTime);

impl FromScalar for Instant {
    const EXPECTING: &'static str = "an RFC 3339 date-time";
    fn from_scalar(s: &str) -> Result<Self, String> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Instant)
            .map_err(|_| format!("invalid date-time `{s}`; write RFC 3339 such as `2025-12-31T18:00:00Z` or `2025-12-31T18:00:00+02:00`"))
    }
}

/// A location filter entry: `None` is `unknown`.
pub(crate) struct Location(pub Option<String>);

impl FromScalar for Location {
    const EXPECTING: &'static str = "a country code or `unknown`";
    fn from_scalar(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("unknown") {
            return Ok(Location(None));
        }
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Ok(Location(Some(s.to_ascii_uppercase())));
        }
        Err(format!("invalid location `{s}`; write an ISO 3166-1 alpha-2 country code such as `DE` or `unknown`"))
    }
}

/// A device trust filter entry: `None` is `unknown`.
pub(crate) struct Trust(pub Option<DeviceTrust>);

impl FromScalar for Trust {
    const EXPECTING: &'static str = "a device trust level";
    fn from_scalar(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("unknown") {
            return Ok(Trust(None));
        }
        DeviceTrust::from_tag(s)
            .map(|t| Trust(Some(t)))
            .ok_or_else(|| {
                one_of(
                    "device trust level",
                    s,
                    &["high", "medium", "low", "exempt", "unknown"],
                )
            })
    }
}

impl FromScalar for TextRegex {
    const EXPECTING: &'static str = "a regular expression";
    fn from_scalar(s: &str) -> Result<Self, String> {
        regex::RegexBuilder::new(s)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(TextRegex)
            .map_err(|e| format!("invalid text_regex: {e}"))
    }
}

impl FromScalar for Stage {
    const EXPECTING: &'static str = "a stage";
    fn from_scalar(s: &str) -> Result<Self, String> {
        [
            Stage::PreConnection,
            Stage::PostConnection,
            Stage::Statement,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            one_of(
                "stage",
                s,
                &["pre-connection", "post-connection", "statement"],
            )
        })
    }
}

impl FromScalar for Action {
    const EXPECTING: &'static str = "an action";
    fn from_scalar(s: &str) -> Result<Self, String> {
        use Action::*;
        [Allow, Block, Audit, Alert, RequireApproval, Logout]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                one_of(
                    "action",
                    s,
                    &[
                        "allow",
                        "block",
                        "audit",
                        "alert",
                        "require-approval",
                        "logout",
                    ],
                )
            })
    }
}

impl FromScalar for Severity {
    const EXPECTING: &'static str = "a severity";
    fn from_scalar(s: &str) -> Result<Self, String> {
        use Severity::*;
        [Info, Low, Medium, High, Critical]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                one_of(
                    "severity",
                    s,
                    &["info", "low", "medium", "high", "critical"],
                )
            })
    }
}

/// `Some(list)` must not be empty: an empty list would silently mean "any" or "none".
pub(crate) fn list<T>(key: &str, v: Option<Vec<T>>) -> Result<Vec<T>, String> {
    match v {
        Some(l) if l.is_empty() => Err(format!(
            "`{key}` is an empty list; list at least one value or remove the key to match any"
        )),
        Some(l) => Ok(l),
        None => Ok(Vec::new()),
    }
}

pub(crate) fn nonempty(key: &str, s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err(format!("`{key}` must not be empty"))
    } else {
        Ok(())
    }
}

/// Checks a grant as a whole.
pub(crate) fn grant(raw: RawGrant) -> Result<Grant, String> {
    nonempty("resource", &raw.resource)?;
    let objects = list(
        "objects",
        Some(raw.objects.into_iter().map(|p| p.0).collect()),
    )?;
    let mut privileges: Vec<Operation> = Vec::new();
    for p in list("privileges", Some(raw.privileges))? {
        for op in p.0 .0 {
            if !privileges.contains(&op) {
                privileges.push(op);
            }
        }
    }
    let (valid_from, valid_until) = match raw.valid {
        Some(v) => (v.from.map(|i| i.0 .0), v.until.map(|i| i.0 .0)),
        None => (None, None),
    };
    if let (Some(f), Some(u)) = (valid_from, valid_until) {
        if f >= u {
            return Err("`valid.from` must be before `valid.until`".into());
        }
    }
    Ok(Grant {
        to: raw.to,
        resource: raw.resource,
        objects,
        privileges,
        expires: raw.expires.map(|i| i.0 .0),
        valid_from,
        valid_until,
    })
}

/// Checks a rule as a whole: lists, the time window, and which filters its stage can evaluate.
pub(crate) fn rule(raw: RawRule) -> Result<Rule, String> {
    nonempty("id", &raw.id)?;
    let stage = raw.stage.map(|s| s.0).unwrap_or(Stage::Statement);
    let action = raw.action.0;
    let when = match raw.when {
        Some(w) => when(w)?,
        None => When::default(),
    };
    if !when.statement_kinds.is_empty() && !when.statement_kinds_not.is_empty() {
        return Err("use either `statement_kinds` or `statement_kinds_not`, not both".into());
    }
    let statement_only = [
        ("objects", !when.objects.is_empty()),
        ("operations", !when.operations.is_empty()),
        ("statement_kinds", !when.statement_kinds.is_empty()),
        ("statement_kinds_not", !when.statement_kinds_not.is_empty()),
        ("text_regex", when.text_regex.is_some()),
        ("rows_above", when.rows_above.is_some()),
    ];
    if stage != Stage::Statement {
        if let Some((key, _)) = statement_only.iter().find(|(_, set)| *set) {
            return Err(format!(
                "`{key}` is only known per statement; use `stage: statement` or remove `{key}` from this {} rule",
                stage.as_str()
            ));
        }
    }
    if stage == Stage::PreConnection {
        let unknown_yet = [
            ("users", !when.users.is_empty()),
            ("roles", !when.roles.is_empty()),
            ("device_trust", !when.device_trust.is_empty()),
        ];
        if let Some((key, _)) = unknown_yet.iter().find(|(_, set)| *set) {
            return Err(format!(
                "`{key}` is not known before authentication; use `stage: post-connection` or remove `{key}`"
            ));
        }
    }
    if when.rows_above.is_some() && !(action.is_passive() || action == Action::Block) {
        return Err(format!(
            "a `rows_above` rule is decided after execution, so its action cannot be `{action}`; use allow, block, audit or alert"
        ));
    }
    let workflow = match (action, raw.workflow) {
        (Action::RequireApproval, workflow) => {
            let workflow = workflow.unwrap_or_else(|| DEFAULT_WORKFLOW.to_owned());
            crate::workflow::check_known(
                &workflow,
                &format!("require-approval rule `{}`", raw.id),
            )?;
            Some(workflow)
        }
        (_, None) => None,
        (_, Some(_)) => {
            return Err(format!(
                "`workflow` only applies to `require-approval` rules, not `{action}`"
            ))
        }
    };
    Ok(Rule {
        id: raw.id,
        name: raw.name,
        stage,
        when,
        action,
        severity: raw.severity.map(|s| s.0).unwrap_or_default(),
        message: raw.message,
        workflow,
    })
}

/// Checks a weekly time window.
pub(crate) fn time_window(t: RawTime) -> Result<TimeWindow, String> {
    let days = list(
        "time.days",
        t.days.map(|d| d.into_iter().map(|p| p.0).collect()),
    )?;
    let from = t.from.map(|c| c.0 .0).unwrap_or(0);
    let to = t.to.map(|c| c.0 .0).unwrap_or(24 * 60);
    if from == to {
        return Err(
            "`time.from` equals `time.to`, an empty window; remove `time` to match any time".into(),
        );
    }
    if from == 24 * 60 {
        return Err("`time.from` cannot be 24:00; use 00:00".into());
    }
    Ok(TimeWindow {
        days,
        from,
        to,
        zone: t.zone.map(|z| z.0).unwrap_or(UtcOffset::UTC),
    })
}

fn when(w: RawWhen) -> Result<When, String> {
    let unwrap = |v: Option<Vec<crate::yaml::Parsed<StatementKind>>>| {
        v.map(|l| l.into_iter().map(|p| p.0).collect())
    };
    let time = w.time.map(time_window).transpose()?;
    Ok(When {
        users: list("users", w.users)?,
        roles: list("roles", w.roles)?,
        resources: list("resources", w.resources)?,
        client_cidrs: list(
            "client_cidrs",
            w.client_cidrs.map(|l| l.into_iter().map(|p| p.0).collect()),
        )?,
        time,
        locations: list(
            "locations",
            w.locations.map(|l| l.into_iter().map(|p| p.0 .0).collect()),
        )?,
        device_trust: list(
            "device_trust",
            w.device_trust
                .map(|l| l.into_iter().map(|p| p.0 .0).collect()),
        )?,
        statement_kinds: list("statement_kinds", unwrap(w.statement_kinds))?,
        statement_kinds_not: list("statement_kinds_not", unwrap(w.statement_kinds_not))?,
        objects: list(
            "objects",
            w.objects.map(|l| l.into_iter().map(|p| p.0).collect()),
        )?,
        operations: list(
            "operations",
            w.operations.map(|l| l.into_iter().map(|p| p.0).collect()),
        )?,
        text_regex: w.text_regex.map(|r| r.0),
        rows_above: w.rows_above,
    })
}
