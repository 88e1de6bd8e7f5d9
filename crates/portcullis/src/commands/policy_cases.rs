//! The case files `policy test` reads: statements with who runs them, in what context, and what the
//! policy must decide. Every value is checked while the YAML is read, so a typo fails the run with the
//! file and line instead of quietly testing something else.

use std::net::IpAddr;
use std::path::Path;

use portcullis_policy::{DeviceTrust, Observed};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use time::OffsetDateTime;

use portcullis_policy::explain::{parse_device_trust, parse_location, parse_time};

/// A whole case file: optional defaults for every case, then the cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: Setting,
    cases: Vec<RawCase>,
}

/// Who runs a statement and in what context; a case's own values win over `defaults:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The gateway user.
    pub user: Option<String>,
    /// The user's roles.
    pub roles: Option<Vec<String>>,
    /// The resource.
    pub resource: Option<String>,
    /// The client's IP address.
    pub client_addr: Option<IpAddr>,
    /// The client's country.
    pub location: Option<Location>,
    /// The device's trust.
    pub device_trust: Option<Trust>,
    /// The statement's time (RFC 3339).
    pub at: Option<At>,
    /// The session's search_path.
    pub search_path: Option<String>,
    /// Whether the user completed MFA.
    pub mfa_verified: Option<bool>,
    /// The justification the user gave.
    pub justification: Option<String>,
    /// Approval workflows that approved the statement.
    pub approvals: Option<Vec<String>>,
    /// Rows fetched or affected, to decide row-count rules.
    pub rows: Option<u64>,
}

impl Setting {
    /// `self`, with what it leaves out taken from `defaults`.
    fn or(self, defaults: &Setting) -> Setting {
        let d = defaults.clone();
        Setting {
            user: self.user.or(d.user),
            roles: self.roles.or(d.roles),
            resource: self.resource.or(d.resource),
            client_addr: self.client_addr.or(d.client_addr),
            location: self.location.or(d.location),
            device_trust: self.device_trust.or(d.device_trust),
            at: self.at.or(d.at),
            search_path: self.search_path.or(d.search_path),
            mfa_verified: self.mfa_verified.or(d.mfa_verified),
            justification: self.justification.or(d.justification),
            approvals: self.approvals.or(d.approvals),
            rows: self.rows.or(d.rows),
        }
    }
}

/// Reads a string with `parse`. Checking inside the visitor, rather than with `try_from`, makes the
/// YAML error point at the value's own line instead of its case's.
fn checked<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Checked<T>(fn(&str) -> Result<T, String>);
    impl<'de, T> Visitor<'de> for Checked<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Checked(parse))
}

/// A country code or `unknown`, checked as `policy explain --location` checks it.
#[derive(Debug, Clone)]
pub struct Location(pub Observed<String>);

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |text| parse_location(text).map(Location))
    }
}

/// A device trust level or `unknown`.
#[derive(Debug, Clone)]
pub struct Trust(pub Observed<DeviceTrust>);

impl<'de> Deserialize<'de> for Trust {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |text| parse_device_trust(text).map(Trust))
    }
}

/// An RFC 3339 time.
#[derive(Debug, Clone, Copy)]
pub struct At(pub OffsetDateTime);

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |text| parse_time(text).map(At))
    }
}

/// The verdict a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
    /// `require-approval`.
    RequireApproval,
}

impl Expect {
    /// As written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
            Expect::RequireApproval => "require-approval",
        }
    }
}

/// A column, `schema.table.column`.
#[derive(Debug, Clone)]
pub struct ColumnRef {
    /// The table's schema.
    pub schema: String,
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
}

impl<'de> Deserialize<'de> for ColumnRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |text| {
            match text.split('.').collect::<Vec<_>>().as_slice() {
                [schema, table, column]
                    if ![schema, table, column].iter().any(|p| p.is_empty()) =>
                {
                    Ok(ColumnRef {
                        schema: (*schema).to_owned(),
                        table: (*table).to_owned(),
                        column: (*column).to_owned(),
                    })
                }
                _ => Err(format!(
                    "`{text}`: write a column as schema.table.column, e.g. hr.employees.ssn"
                )),
            }
        })
    }
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// A table, `schema.table`.
#[derive(Debug, Clone)]
pub struct TableRef {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
}

impl<'de> Deserialize<'de> for TableRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |text| match text.split_once('.') {
            Some((schema, table))
                if !schema.is_empty() && !table.is_empty() && !table.contains('.') =>
            {
                Ok(TableRef {
                    schema: schema.to_owned(),
                    table: table.to_owned(),
                })
            }
            _ => Err(format!(
                "`{text}`: write a table as schema.table, e.g. sales.orders"
            )),
        })
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A case as written. The context fields repeat [`Setting`]'s rather than flattening it: serde's
/// `flatten` gives up `deny_unknown_fields` and the line numbers of errors inside it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Option<String>,
    statement: String,
    user: Option<String>,
    roles: Option<Vec<String>>,
    resource: Option<String>,
    client_addr: Option<IpAddr>,
    location: Option<Location>,
    device_trust: Option<Trust>,
    at: Option<At>,
    search_path: Option<String>,
    mfa_verified: Option<bool>,
    justification: Option<String>,
    approvals: Option<Vec<String>>,
    rows: Option<u64>,
    expect: Expect,
    reason_contains: Option<String>,
    #[serde(default)]
    masked: Vec<ColumnRef>,
    #[serde(default)]
    unmasked: Vec<ColumnRef>,
    #[serde(default)]
    filtered: Vec<TableRef>,
    #[serde(default)]
    fired: Vec<String>,
}

impl RawCase {
    fn setting(&self) -> Setting {
        Setting {
            user: self.user.clone(),
            roles: self.roles.clone(),
            resource: self.resource.clone(),
            client_addr: self.client_addr,
            location: self.location.clone(),
            device_trust: self.device_trust.clone(),
            at: self.at,
            search_path: self.search_path.clone(),
            mfa_verified: self.mfa_verified,
            justification: self.justification.clone(),
            approvals: self.approvals.clone(),
            rows: self.rows,
        }
    }
}

/// One case, ready to run.
#[derive(Debug)]
pub struct Case {
    /// Its name, or `case N` (1-based).
    pub label: String,
    /// The line its entry starts on, when the file's layout shows it.
    pub line: Option<usize>,
    /// The SQL.
    pub statement: String,
    /// Who and in what context, defaults applied.
    pub setting: Setting,
    /// The user (required).
    pub user: String,
    /// The resource (required).
    pub resource: String,
    /// The expected verdict.
    pub expect: Expect,
    /// Text the reason must contain.
    pub reason_contains: Option<String>,
    /// Columns that must be masked.
    pub masked: Vec<ColumnRef>,
    /// Columns that must not be masked.
    pub unmasked: Vec<ColumnRef>,
    /// Tables a row filter must apply to.
    pub filtered: Vec<TableRef>,
    /// Rules and Cedar policies that must have taken part.
    pub fired: Vec<String>,
}

/// Reads and checks a case file. Errors are `file:line:column: message` where the YAML shows the
/// place.
pub fn load(file: &Path) -> Result<Vec<Case>, String> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {name}: {e}"))?;
    let raw: RawFile = serde_yaml_ng::from_str(&text).map_err(|e| {
        let message = e.to_string();
        match e.location() {
            Some(loc) => {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                let message = message.strip_suffix(&suffix).unwrap_or(&message);
                format!("{name}:{}:{}: {message}", loc.line(), loc.column())
            }
            None => format!("{name}: {message}"),
        }
    })?;
    let lines = case_lines(&text);
    let lines = (lines.len() == raw.cases.len()).then_some(lines);
    let mut cases = Vec::with_capacity(raw.cases.len());
    for (i, raw_case) in raw.cases.into_iter().enumerate() {
        let line = lines.as_ref().and_then(|l| l.get(i).copied());
        let label = raw_case
            .name
            .clone()
            .unwrap_or_else(|| format!("case {}", i + 1));
        let place = match line {
            Some(line) => format!("{name}:{line}"),
            None => name.clone(),
        };
        let setting = raw_case.setting().or(&raw.defaults);
        let required = |value: &Option<String>, key: &str| {
            value.clone().ok_or_else(|| {
                format!("{place}: {label} has no `{key}`; give it in the case or under `defaults:`")
            })
        };
        let user = required(&setting.user, "user")?;
        let resource = required(&setting.resource, "resource")?;
        cases.push(Case {
            label,
            line,
            statement: raw_case.statement,
            user,
            resource,
            setting,
            expect: raw_case.expect,
            reason_contains: raw_case.reason_contains,
            masked: raw_case.masked,
            unmasked: raw_case.unmasked,
            filtered: raw_case.filtered,
            fired: raw_case.fired,
        });
    }
    Ok(cases)
}

/// The line (1-based) each entry of the top-level `cases:` list starts on, for block-style lists; the
/// YAML parser does not report where values are, and a case's line is what a reader of a failed CI
/// run looks for.
fn case_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut in_cases = false;
    let mut item_indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if indent == 0 && !content.starts_with('-') {
            in_cases = content.starts_with("cases:");
            item_indent = None;
            continue;
        }
        if !in_cases || !(content.starts_with("- ") || content == "-") {
            continue;
        }
        match item_indent {
            None => {
                item_indent = Some(indent);
                lines.push(n + 1);
            }
            Some(i) if i == indent => lines.push(n + 1),
            Some(_) => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::case_lines;

    #[test]
    fn case_lines_follow_the_top_level_list() {
        let text = "defaults:\n  roles:\n    - a\ncases:\n  # first\n  - name: x\n    fired:\n      - r\n  - name: y\nother: 1\n";
        assert_eq!(case_lines(text), [6, 9]);
    }
}
