//! The names the embedded schema defines, parsed once: entity types, the action for each SQL operation,
//! and the action entities (with their groups) every request needs in its entity store.

use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, Schema};
use portcullis_sql::{ObjectKind, Operation};

/// The Portcullis Cedar schema (Cedar schema syntax) every `cedar:` policy is validated against.
pub const SCHEMA_TEXT: &str = include_str!("portcullis.cedarschema");

/// The action of a Cedar request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CedarAction {
    /// Opening a session (`Action::"connect"` on the resource).
    Connect,
    /// The statement as a whole (`Action::"statement"` on the resource).
    Statement,
    /// An operation on an object component.
    Op(Operation),
}

impl CedarAction {
    /// The action's id in the schema: YAML privilege names (`read` is `select`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Statement => "statement",
            Self::Op(Operation::Read) => "select",
            Self::Op(op) => op.as_str(),
        }
    }

    /// A dense index, for tables and cache keys.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Connect => 0,
            Self::Statement => 1,
            Self::Op(op) => 2 + Operation::ALL.iter().position(|o| *o == op).unwrap_or(0),
        }
    }

    fn all() -> impl Iterator<Item = CedarAction> {
        [Self::Connect, Self::Statement]
            .into_iter()
            .chain(Operation::ALL.iter().map(|op| Self::Op(*op)))
    }
}

/// The Cedar entity type an object component becomes.
pub(crate) fn object_type(kind: ObjectKind) -> ObjectType {
    match kind {
        ObjectKind::Relation | ObjectKind::Sequence => ObjectType::Table,
        ObjectKind::Function => ObjectType::Function,
        ObjectKind::Schema => ObjectType::Schema,
        ObjectKind::Database
        | ObjectKind::Type
        | ObjectKind::Role
        | ObjectKind::Setting
        | ObjectKind::Channel
        | ObjectKind::Server
        | ObjectKind::Extension
        | ObjectKind::Publication
        | ObjectKind::Subscription
        | ObjectKind::EventTrigger
        | ObjectKind::ForeignDataWrapper
        | ObjectKind::ForeignServer
        | ObjectKind::Tablespace
        | ObjectKind::Language
        | ObjectKind::AccessMethod
        | ObjectKind::LargeObject
        | ObjectKind::Other => ObjectType::Object,
    }
}

/// Entity types for objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectType {
    Table,
    Function,
    Schema,
    Object,
}

/// Everything derived from the schema.
pub(crate) struct Vocabulary {
    /// The parsed schema, for validation.
    pub schema: Schema,
    pub user: EntityTypeName,
    pub resource: EntityTypeName,
    pub schema_type: EntityTypeName,
    pub table: EntityTypeName,
    pub function: EntityTypeName,
    pub object: EntityTypeName,
    pub device_trust: EntityTypeName,
    pub weekday: EntityTypeName,
    role: EntityTypeName,
    /// Action entities (with their groups as ancestors), by [`CedarAction::index`].
    actions: Vec<Entity>,
    /// Each action's groups, transitively, by [`CedarAction::index`].
    action_ancestors: Vec<Vec<EntityUid>>,
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vocabulary")
    }
}

impl Vocabulary {
    /// The vocabulary, built on first use. An error means the embedded schema is broken (a bug, caught by
    /// the crate's tests), reported to whoever loads a Cedar policy rather than panicking.
    pub(crate) fn get() -> Result<&'static Vocabulary, String> {
        static VOCABULARY: OnceLock<Result<Vocabulary, String>> = OnceLock::new();
        VOCABULARY
            .get_or_init(Self::build)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build() -> Result<Vocabulary, String> {
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            format!("internal error: the embedded Cedar schema is invalid ({what}: {e})")
        };
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA_TEXT).map_err(|e| internal("schema", &e))?;
        let name = |n: &str| EntityTypeName::from_str(n).map_err(|e| internal(n, &e));
        let action_type = name("Action")?;
        let store = schema
            .action_entities()
            .map_err(|e| internal("actions", &e))?;
        let mut actions = Vec::new();
        let mut action_ancestors = Vec::new();
        for action in CedarAction::all() {
            let uid =
                EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(action.name()));
            let entity = store
                .get(&uid)
                .cloned()
                .ok_or_else(|| internal("missing action", &action.name()))?;
            action_ancestors.push(
                store
                    .ancestors(&uid)
                    .map(|a| a.cloned().collect())
                    .unwrap_or_default(),
            );
            actions.push(entity);
        }
        Ok(Vocabulary {
            user: name("User")?,
            role: name("Role")?,
            resource: name("Resource")?,
            schema_type: name("Schema")?,
            table: name("Table")?,
            function: name("Function")?,
            object: name("Object")?,
            device_trust: name("DeviceTrust")?,
            weekday: name("Weekday")?,
            actions,
            action_ancestors,
            schema,
        })
    }

    /// The action entity for `action`.
    pub(crate) fn action(&self, action: CedarAction) -> Option<&Entity> {
        self.actions.get(action.index())
    }

    /// The action's groups, transitively.
    pub(crate) fn action_ancestors(&self, action: CedarAction) -> &[EntityUid] {
        self.action_ancestors
            .get(action.index())
            .map_or(&[], Vec::as_slice)
    }

    /// The type name for an object entity type.
    pub(crate) fn object_type_name(&self, t: ObjectType) -> &EntityTypeName {
        match t {
            ObjectType::Table => &self.table,
            ObjectType::Function => &self.function,
            ObjectType::Schema => &self.schema_type,
            ObjectType::Object => &self.object,
        }
    }

    /// `Type::"id"`.
    pub(crate) fn uid(t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }

    /// The role entity uid for `role`.
    pub(crate) fn role_uid(&self, role: &str) -> EntityUid {
        Self::uid(&self.role, role)
    }
}
