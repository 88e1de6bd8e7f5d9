//! Name resolution for replaying a recorded statement: the audit record keeps the names the gateway
//! resolved each object to, not the session's search_path or catalog, so those names stand in for both.

use std::collections::HashSet;

use portcullis_sql::{quote_ident, Catalog};
use portcullis_store::StatementEvent;

/// The catalog a recorded statement was resolved against, as far as its record shows: the objects it
/// touched, by the names the gateway resolved them to. Unqualified names in the text find them along a
/// search path of their schemas; anything else falls back to what `policy explain` assumes.
pub struct RecordedCatalog {
    objects: HashSet<(String, String)>,
    schemas: Vec<String>,
}

impl RecordedCatalog {
    /// What `s`'s record shows.
    pub fn new(s: &StatementEvent) -> Self {
        let mut objects = HashSet::new();
        let mut schemas: Vec<String> = Vec::new();
        for o in &s.objects {
            if let Some((schema, name)) = o.name.split_once('.') {
                objects.insert((schema.to_owned(), name.to_owned()));
                if !schemas.iter().any(|s| s == schema) {
                    schemas.push(schema.to_owned());
                }
            }
        }
        RecordedCatalog { objects, schemas }
    }

    /// The recorded schemas, then PostgreSQL's default path.
    pub fn search_path(&self) -> String {
        self.schemas
            .iter()
            .map(|s| quote_ident(s).into_owned())
            .chain(["\"$user\"".to_owned(), "public".to_owned()])
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Catalog for RecordedCatalog {
    fn has_relation(&self, schema: &str, name: &str) -> bool {
        self.objects.contains(&(schema.to_owned(), name.to_owned()))
    }
    fn has_schema(&self, schema: &str) -> bool {
        self.schemas.iter().any(|s| s == schema)
    }
    fn has_function(&self, schema: &str, name: &str) -> bool {
        self.has_relation(schema, name) || schema == "pg_catalog"
    }
}

#[cfg(test)]
mod tests {
    use portcullis_sql::{resolve, ObjectKind, ObjectName, SearchPath};
    use portcullis_store::{AuditObject, StatementEvent};

    use super::RecordedCatalog;

    #[test]
    fn unqualified_names_find_the_recorded_objects() {
        let record = StatementEvent {
            session_id: "s".into(),
            at: 0,
            user: "bob".into(),
            resource: "app".into(),
            client_addr: "127.0.0.1:5000".into(),
            text: "SELECT id FROM employees JOIN notes USING (id)".into(),
            kind: "select".into(),
            objects: vec![
                AuditObject {
                    name: "hr.employees".into(),
                    operation: "select".into(),
                },
                AuditObject {
                    name: "public.notes".into(),
                    operation: "select".into(),
                },
            ],
            param_count: 0,
            rows: None,
            duration_us: 0,
            decision: "allow".into(),
            outcome: "ok".into(),
            sqlstate: None,
            message: None,
            policy: None,
        };
        let catalog = RecordedCatalog::new(&record);
        let path = SearchPath::from_setting(&catalog.search_path());
        let find = |name: &str| {
            let name = ObjectName {
                database: None,
                schema: None,
                name: name.into(),
            };
            resolve(&name, ObjectKind::Relation, &path, "bob", &catalog).to_string()
        };
        assert_eq!(find("employees"), "hr.employees");
        assert_eq!(find("notes"), "public.notes");
    }
}
