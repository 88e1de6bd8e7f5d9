//! Loading `masks`, `row_filters` and `column_denies` from YAML. As for rules, validation runs inside
//! deserialisation: scalars (patterns, predicates) report their own position, whole-entry checks the
//! position of the entry, mask parameters the position of the `mask` mapping.

use portcullis_sql::mask::MaskKind;
use serde::de::Deserializer;
use serde::Deserialize;

use super::model::{ColumnDenyRule, Conditions, Exemption, MaskRule, Predicate, RowFilterRule};
use super::predicate;
use crate::model::Cidr;
use crate::pattern::{ObjectPattern, Scope};
use crate::validate::{self, FromScalar, Location, Trust};
use crate::yaml::{checked_map, claim_id, Parsed, RawTime};

/// `round` accepts the scales PostgreSQL's `numeric` does.
const ROUND_DIGITS: std::ops::RangeInclusive<i32> = -1000..=1000;

/// A `schema.table.column` pattern.
struct ColumnPattern(ObjectPattern);

impl FromScalar for ColumnPattern {
    const EXPECTING: &'static str = "a column pattern";
    fn from_scalar(s: &str) -> Result<Self, String> {
        let pattern = ObjectPattern::parse(s)?;
        if pattern.is_column() {
            Ok(Self(pattern))
        } else {
            Err(format!(
                "`{s}` is not a column pattern; write `schema.table.column` (e.g. `hr.employees.ssn`, `hr.*.ssn`, `hr.employees.*`)"
            ))
        }
    }
}

/// A `schema.table` pattern.
struct TablePattern(ObjectPattern);

impl FromScalar for TablePattern {
    const EXPECTING: &'static str = "a table pattern";
    fn from_scalar(s: &str) -> Result<Self, String> {
        let pattern = ObjectPattern::parse(s)?;
        match pattern.scope() {
            Scope::Object { .. } => Ok(Self(pattern)),
            _ => Err(format!(
                "`{s}` is not a table pattern; write `schema.table` (e.g. `sales.orders`, `sales.*`, `*.*`)"
            )),
        }
    }
}

impl FromScalar for Predicate {
    const EXPECTING: &'static str = "a SQL predicate";
    fn from_scalar(s: &str) -> Result<Self, String> {
        predicate::parse(s)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMask {
    id: String,
    resource: String,
    columns: Vec<Parsed<ColumnPattern>>,
    mask: MaskSpec,
    exempt: Option<Exemption>,
    when: Option<Conditions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRowFilter {
    id: String,
    resource: String,
    table: Parsed<TablePattern>,
    predicate: Parsed<Predicate>,
    exempt: Option<Exemption>,
    when: Option<Conditions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumnDeny {
    id: String,
    resource: String,
    columns: Vec<Parsed<ColumnPattern>>,
    exempt: Option<Exemption>,
    when: Option<Conditions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExempt {
    users: Option<Vec<String>>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditions {
    time: Option<RawTime>,
    locations: Option<Vec<Parsed<Location>>>,
    device_trust: Option<Vec<Parsed<Trust>>>,
    client_cidrs: Option<Vec<Parsed<Cidr>>>,
}

/// A mask as written: `kind` and the parameters of that kind (snake_case, like every key of the file).
/// Kept apart from [`MaskKind`]'s own serde form so that each parameter given to the wrong kind gets an
/// error saying which kind it belongs to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaskKind {
    kind: Parsed<KindName>,
    keep_first: Option<u32>,
    keep_last: Option<u32>,
    salt: Option<String>,
    pattern: Option<String>,
    replacement: Option<String>,
    value: Option<String>,
    digits: Option<i32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KindName {
    Full,
    Partial,
    Hash,
    Null,
    Email,
    Regex,
    Constant,
    Round,
}

const KIND_NAMES: [(&str, KindName); 8] = [
    ("full", KindName::Full),
    ("partial", KindName::Partial),
    ("hash", KindName::Hash),
    ("null", KindName::Null),
    ("email", KindName::Email),
    ("regex", KindName::Regex),
    ("constant", KindName::Constant),
    ("round", KindName::Round),
];

impl FromScalar for KindName {
    const EXPECTING: &'static str = "a mask kind";
    fn from_scalar(s: &str) -> Result<Self, String> {
        KIND_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = KIND_NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown mask kind `{s}`; use one of: {}", names.join(", "))
            })
    }
}

impl KindName {
    fn as_str(self) -> &'static str {
        KIND_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The parameters this kind takes.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::Partial => &["keep_first", "keep_last"],
            Self::Hash => &["salt"],
            Self::Regex => &["pattern", "replacement"],
            Self::Constant => &["value"],
            Self::Round => &["digits"],
            Self::Full | Self::Null | Self::Email => &[],
        }
    }
}

/// A validated `mask:` mapping.
struct MaskSpec(MaskKind);

impl<'de> Deserialize<'de> for MaskSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, mask_kind).map(MaskSpec)
    }
}

fn mask_kind(raw: RawMaskKind) -> Result<MaskKind, String> {
    let kind = raw.kind.0;
    let given = [
        ("keep_first", raw.keep_first.is_some()),
        ("keep_last", raw.keep_last.is_some()),
        ("salt", raw.salt.is_some()),
        ("pattern", raw.pattern.is_some()),
        ("replacement", raw.replacement.is_some()),
        ("value", raw.value.is_some()),
        ("digits", raw.digits.is_some()),
    ];
    if let Some((key, _)) = given
        .iter()
        .find(|(key, set)| *set && !kind.parameters().contains(key))
    {
        let owner = KIND_NAMES
            .iter()
            .find(|(_, k)| k.parameters().contains(key))
            .map(|(n, _)| *n)
            .unwrap_or("?");
        return Err(format!(
            "`{key}` is a parameter of `kind: {owner}`, not of `kind: {}`; remove it or change the kind",
            kind.as_str()
        ));
    }
    let required = |key: &str, v: Option<String>| {
        v.ok_or_else(|| format!("`kind: {}` needs `{key}`", kind.as_str()))
    };
    Ok(match kind {
        KindName::Full => MaskKind::Full,
        KindName::Null => MaskKind::Null,
        KindName::Email => MaskKind::Email,
        KindName::Partial => {
            let keep_first = raw.keep_first.unwrap_or(0);
            let keep_last = raw.keep_last.unwrap_or(0);
            if keep_first == 0 && keep_last == 0 {
                return Err("`kind: partial` keeps nothing; set `keep_first` and/or `keep_last`, or use `kind: full`".into());
            }
            MaskKind::Partial {
                keep_first,
                keep_last,
            }
        }
        KindName::Hash => {
            let salt = required("salt", raw.salt)?;
            if salt.trim().is_empty() {
                return Err("`salt` is empty; give a random text so hashes of common values cannot be looked up".into());
            }
            MaskKind::Hash { salt }
        }
        KindName::Regex => {
            let pattern = required("pattern", raw.pattern)?;
            check_regex(&pattern)?;
            MaskKind::Regex {
                pattern,
                replacement: required("replacement", raw.replacement)?,
            }
        }
        KindName::Constant => MaskKind::Constant {
            value: required("value", raw.value)?,
        },
        KindName::Round => {
            let digits = raw.digits.unwrap_or(0);
            if !ROUND_DIGITS.contains(&digits) {
                return Err(format!(
                    "`digits: {digits}` is out of range; use {} to {} (negative rounds to tens, hundreds, …)",
                    ROUND_DIGITS.start(),
                    ROUND_DIGITS.end()
                ));
            }
            MaskKind::Round { digits }
        }
    })
}

/// Catches structural mistakes in a regex mask's pattern (unbalanced parentheses or brackets, a
/// repetition of nothing) with Rust's regex parser. PostgreSQL's dialect differs in escapes, look-around
/// and back-references, so those are left for PostgreSQL to judge rather than rejected here.
fn check_regex(pattern: &str) -> Result<(), String> {
    use regex_syntax::ast::ErrorKind;
    if pattern.is_empty() {
        return Err("`pattern` is empty; write the regular expression to replace".into());
    }
    match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::EscapeUnrecognized
                    | ErrorKind::UnsupportedBackreference
                    | ErrorKind::UnsupportedLookAround
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!(
            "invalid regular expression in `pattern`: {} (at character {})",
            e.kind(),
            e.span().start.offset + 1
        )),
    }
}

impl<'de> Deserialize<'de> for Exemption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |raw: RawExempt| {
            let exemption = Exemption {
                users: validate::list("users", raw.users)?,
                roles: validate::list("roles", raw.roles)?,
            };
            if exemption.users.is_empty() && exemption.roles.is_empty() {
                return Err(
                    "`exempt` names nobody; list `users` and/or `roles`, or remove `exempt`".into(),
                );
            }
            Ok(exemption)
        })
    }
}

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |raw: RawConditions| {
            let unwrap = |v: Option<Vec<Parsed<Location>>>| {
                v.map(|l| l.into_iter().map(|p| p.0 .0).collect())
            };
            Ok(Conditions {
                time: raw.time.map(validate::time_window).transpose()?,
                locations: validate::list("locations", unwrap(raw.locations))?,
                device_trust: validate::list(
                    "device_trust",
                    raw.device_trust
                        .map(|l| l.into_iter().map(|p| p.0 .0).collect()),
                )?,
                client_cidrs: validate::list(
                    "client_cidrs",
                    raw.client_cidrs
                        .map(|l| l.into_iter().map(|p| p.0).collect()),
                )?,
            })
        })
    }
}

/// Checks what every protection rule has: a non-blank, unique id and a resource.
fn common(id: &str, what: &str, resource: &str) -> Result<(), String> {
    validate::nonempty("id", id)?;
    validate::nonempty("resource", resource)?;
    claim_id(id, what)
}

fn columns(raw: Vec<Parsed<ColumnPattern>>) -> Result<Vec<ObjectPattern>, String> {
    if raw.is_empty() {
        return Err("`columns` is empty; list at least one `schema.table.column` pattern".into());
    }
    Ok(raw.into_iter().map(|p| p.0 .0).collect())
}

impl<'de> Deserialize<'de> for MaskRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |raw: RawMask| {
            common(&raw.id, "mask", &raw.resource)?;
            Ok(MaskRule {
                columns: columns(raw.columns)?,
                id: raw.id,
                resource: raw.resource,
                mask: raw.mask.0,
                exempt: raw.exempt.unwrap_or_default(),
                when: raw.when.unwrap_or_default(),
            })
        })
    }
}

impl<'de> Deserialize<'de> for RowFilterRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |raw: RawRowFilter| {
            common(&raw.id, "row filter", &raw.resource)?;
            Ok(RowFilterRule {
                id: raw.id,
                resource: raw.resource,
                table: raw.table.0 .0,
                predicate: raw.predicate.0,
                exempt: raw.exempt.unwrap_or_default(),
                when: raw.when.unwrap_or_default(),
            })
        })
    }
}

impl<'de> Deserialize<'de> for ColumnDenyRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |raw: RawColumnDeny| {
            common(&raw.id, "column deny", &raw.resource)?;
            Ok(ColumnDenyRule {
                columns: columns(raw.columns)?,
                id: raw.id,
                resource: raw.resource,
                exempt: raw.exempt.unwrap_or_default(),
                when: raw.when.unwrap_or_default(),
            })
        })
    }
}
