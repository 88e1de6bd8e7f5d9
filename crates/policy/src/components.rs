//! Components (ARCHITECTURE §2): one per object a statement touches, plus one for the statement itself.

use std::fmt;

use portcullis_sql::{
    ObjectAccess, ObjectKind, Operation, QualifiedName, Statement, StatementKind,
};

/// An object component: one object and what the statement does to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectComponent {
    /// Resolved schema; empty for objects outside schemas (schemas, databases, roles).
    pub schema: String,
    /// The object's name.
    pub name: String,
    /// What kind of object it is.
    pub kind: ObjectKind,
    /// What the statement does to it.
    pub operation: Operation,
    /// Columns involved; empty means not known, treated as every column.
    pub columns: Vec<String>,
}

impl ObjectComponent {
    /// `schema.name`, or `name` for schema-less objects.
    pub fn display_name(&self) -> String {
        self.to_string()
    }
}

/// Writes [`ObjectComponent::display_name`] without building it first.
impl fmt::Display for ObjectComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.schema.is_empty() {
            write!(f, "{}.", self.schema)?;
        }
        f.write_str(&self.name)
    }
}

/// The statement component: the statement's kind and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementComponent {
    /// The kind (`SELECT`, `CREATE TABLE AS`, ...).
    pub kind: StatementKind,
    /// The statement's text, for `text_regex`.
    pub text: String,
    /// Why the analyser could not attribute everything to objects; such statements are denied.
    pub opaque: Option<String>,
}

/// A unit rules fire on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    /// An object component.
    Object(ObjectComponent),
    /// The statement component.
    Statement(StatementComponent),
}

impl Component {
    /// The object component, if this is one.
    pub fn as_object(&self) -> Option<&ObjectComponent> {
        match self {
            Self::Object(o) => Some(o),
            Self::Statement(_) => None,
        }
    }

    /// The statement component, if this is one.
    pub fn as_statement(&self) -> Option<&StatementComponent> {
        match self {
            Self::Statement(s) => Some(s),
            Self::Object(_) => None,
        }
    }

    /// A short description for reasons and audit records.
    pub fn describe(&self) -> String {
        match self {
            Self::Object(o) => format!("{} {o}", o.operation),
            Self::Statement(s) => format!("statement {}", s.kind),
        }
    }
}

/// One object access whose name the caller has resolved (search path, catalog).
pub type ResolvedAccess = (QualifiedName, ObjectKind, Operation, Vec<String>);

/// The components of `stmt`: one per resolved object access, in the order given, then the statement
/// component.
pub fn components(
    stmt: &Statement,
    resolved: impl IntoIterator<Item = ResolvedAccess>,
) -> Vec<Component> {
    let mut out: Vec<Component> = resolved
        .into_iter()
        .map(|(name, kind, operation, columns)| {
            Component::Object(ObjectComponent {
                schema: name.schema,
                name: name.name,
                kind,
                operation,
                columns,
            })
        })
        .collect();
    out.push(Component::Statement(StatementComponent {
        kind: stmt.kind.clone(),
        text: stmt.text.clone(),
        opaque: stmt.opaque.clone(),
    }));
    out
}

/// The components of `stmt`, resolving each object access with `resolve`.
pub fn components_with(
    stmt: &Statement,
    mut resolve: impl FnMut(&ObjectAccess) -> QualifiedName,
) -> Vec<Component> {
    let resolved: Vec<ResolvedAccess> = stmt
        .objects
        .iter()
        .map(|o| (resolve(o), o.kind, o.operation, o.columns.clone()))
        .collect();
    components(stmt, resolved)
}
