//! The FROM items visible at each query level, so that column references naming a replaced relation still
//! reach the projection that replaced it.
//!
//! Why this is needed: a protected relation (or an expanded view) becomes a subquery aliased by the
//! relation's name. PostgreSQL resolves `schema.rel.col` and `catalog.schema.rel.col` (and `schema.rel.*`)
//! only against an *unaliased relation* item of that relation, so after the rewrite such a reference would
//! fail ("invalid reference to FROM-clause entry"). The rewrite points it at the projection's alias instead,
//! after checking that, from where the reference stands, the alias resolves to the same item the original
//! reference did.
//!
//! Two unaliased relations of one name in different schemas (`FROM hr.people, sales.people`) are valid SQL
//! only while both are relations: two subqueries named `people` are not. A projection replacing one of them
//! gets a name of its own (`hr_people`), which the schema-qualified references to it are pointed at; a bare
//! `people.col` was ambiguous in the original and is refused as such.
//!
//! The model follows PostgreSQL's name resolution (parse_relation.c) closely enough for that purpose: levels
//! are searched from the innermost out; a non-LATERAL subquery in a FROM list does not see the items of its
//! own level (a function does: PostgreSQL makes every function in FROM LATERAL); an aliased join hides the items inside it. Where it errs it errs on the side of
//! refusing or of leaving the reference as written, and a reference left as written can only fail on the
//! server, never read a raw value: every reference to a protected relation was replaced by its projection.

use pg_query::protobuf::{self, Node};
use pg_query::NodeEnum;

use super::error::RewriteError;
use crate::resolve::QualifiedName;

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
const MAX_IDENTIFIER: usize = 63;

/// What the rewrite put in place of a FROM item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replaced {
    /// Left as written.
    No,
    /// A masked projection of a protected relation, reading the relation by a `RangeVar` inside it.
    Projection,
    /// An expanded view (possibly under a projection): no `RangeVar` of the view is left in it.
    View,
}

/// One FROM item (or write target) of a query level.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The name references use for it in the client's statement (alias, relation or function name);
    /// `None` for an unaliased subquery, which cannot be referenced by name.
    pub(crate) before: Option<String>,
    /// Its name in the rewritten statement.
    pub(crate) after: Option<String>,
    /// For an unaliased relation reference, the relation it resolved to: `schema.rel.col` names it.
    pub(crate) relation: Option<QualifiedName>,
    pub(crate) replaced: Replaced,
    /// The database the FROM item was qualified with (empty when none).
    pub(crate) catalog: String,
    /// The database named by catalog-qualified column references to it, which the relation inside the
    /// projection is then qualified with, so PostgreSQL still checks it is the current database.
    pub(crate) wanted_catalog: Option<String>,
    /// False once an aliased join around it hides it.
    pub(crate) visible: bool,
}

impl Item {
    /// An item referenced only by `name` (subquery, function, join alias, CTE reference, ...).
    pub(crate) fn named(name: Option<String>) -> Self {
        Item {
            before: name.clone(),
            after: name,
            relation: None,
            replaced: Replaced::No,
            catalog: String::new(),
            wanted_catalog: None,
            visible: true,
        }
    }

    fn renamed(&self) -> bool {
        self.before != self.after
    }
}

/// One query level.
#[derive(Debug, Default)]
pub(crate) struct Level {
    pub(crate) items: Vec<Item>,
    /// While a non-LATERAL subquery of this level's FROM list is walked: it cannot see the level's items.
    hidden: bool,
    /// The reference names of every item of the level's FROM list (and its write target), collected before
    /// they are rewritten: a name that occurs twice belongs to relations of one name in different schemas.
    names: Vec<String>,
    /// Names chosen for renamed projections of this level.
    chosen: Vec<String>,
}

/// How a column reference's qualifier is to be written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// As it is.
    Leave,
    /// Qualified by this name alone (the projection's alias).
    Rename(String),
}

/// The levels enclosing the node being walked, innermost last.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    levels: Vec<Level>,
}

impl Scopes {
    /// Enters a query level whose FROM list (and write target) reference the items named `names`.
    pub(crate) fn push(&mut self, names: Vec<String>) {
        self.levels.push(Level {
            names,
            ..Level::default()
        });
    }

    /// Leaves the innermost level.
    pub(crate) fn pop(&mut self) -> Level {
        self.levels.pop().unwrap_or_default()
    }

    /// Adds an item to the innermost level (none outside every level: nothing can reference it).
    pub(crate) fn add(&mut self, item: Item) {
        if let Some(level) = self.levels.last_mut() {
            level.items.push(item);
        }
    }

    /// How many items the innermost level has, to mark those added after as hidden by an aliased join.
    pub(crate) fn mark(&self) -> usize {
        self.levels.last().map_or(0, |l| l.items.len())
    }

    /// Hides the innermost level's items added since `mark` (an aliased join around them).
    pub(crate) fn hide_since(&mut self, mark: usize) {
        if let Some(level) = self.levels.last_mut() {
            for item in level.items.iter_mut().skip(mark) {
                item.visible = false;
            }
        }
    }

    /// Sets whether the innermost level's items are invisible to what is walked next; returns the previous
    /// setting.
    pub(crate) fn set_hidden(&mut self, hidden: bool) -> bool {
        match self.levels.last_mut() {
            Some(level) => std::mem::replace(&mut level.hidden, hidden),
            None => false,
        }
    }

    /// Whether the innermost level already has a visible unaliased reference to `relation`.
    pub(crate) fn has_relation(&self, relation: &QualifiedName) -> bool {
        self.levels.last().is_some_and(|l| {
            l.items
                .iter()
                .any(|i| i.visible && i.relation.as_ref() == Some(relation))
        })
    }

    /// The name a projection replacing an unaliased reference to `relation` (in its `relname` spelling)
    /// takes: the relation name, unless another item of the level has that name too, when it is a new name
    /// no item in scope has.
    pub(crate) fn projection_name(&mut self, relname: &str, relation: &QualifiedName) -> String {
        let Some(level) = self.levels.last() else {
            return relname.to_owned();
        };
        if level.names.iter().filter(|n| *n == relname).count() < 2 {
            return relname.to_owned();
        }
        let base = truncate(
            &format!("{}_{}", relation.schema, relname),
            MAX_IDENTIFIER - 4,
        );
        let mut candidate = base.clone();
        let mut n = 1u32;
        while self.taken(&candidate) {
            n += 1;
            candidate = format!("{base}_{n}");
        }
        if let Some(level) = self.levels.last_mut() {
            level.chosen.push(candidate.clone());
        }
        candidate
    }

    /// Whether `name` is used by an item of any level in scope.
    fn taken(&self, name: &str) -> bool {
        self.levels.iter().any(|l| {
            l.names.iter().any(|n| truncate(n, MAX_IDENTIFIER) == name)
                || l.chosen.iter().any(|n| n == name)
                || l.items
                    .iter()
                    .any(|i| i.before.as_deref() == Some(name) || i.after.as_deref() == Some(name))
        })
    }

    /// The levels whose items a reference here can see, innermost first, with their index.
    fn visible_levels(&self) -> impl Iterator<Item = (usize, &Level)> {
        self.levels
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, l)| !l.hidden)
    }

    /// `[catalog.]schema.rel.<field>` (`shown` is the reference as written, for messages): pointed at the
    /// projection when PostgreSQL would have resolved it to a relation that was replaced.
    pub(crate) fn qualified(
        &mut self,
        catalog: Option<&str>,
        schema: &str,
        rel: &str,
        shown: &str,
    ) -> Result<Resolution, RewriteError> {
        let name = QualifiedName {
            schema: schema.to_owned(),
            name: rel.to_owned(),
        };
        // PostgreSQL matches such a reference only to an unaliased relation item of that relation, the
        // innermost one.
        let found = self.visible_levels().find_map(|(li, level)| {
            level
                .items
                .iter()
                .position(|i| i.visible && i.relation.as_ref() == Some(&name))
                .map(|ii| (li, ii))
        });
        let Some((li, ii)) = found else {
            // Nothing in scope by that name: the original fails the same way.
            return Ok(Resolution::Leave);
        };
        let item = &self.levels[li].items[ii];
        if item.replaced == Replaced::No {
            return Ok(Resolution::Leave);
        }
        let Some(alias) = item.after.clone() else {
            return Err(RewriteError::Internal(format!(
                "the projection replacing {name} has no name"
            )));
        };
        // The alias alone must resolve to the same item from here: no item of this or any level between
        // may carry that name.
        let shadowed = self
            .visible_levels()
            .take_while(|(lj, _)| *lj >= li)
            .any(|(lj, level)| {
                level.items.iter().enumerate().any(|(ij, other)| {
                    other.visible
                        && (lj, ij) != (li, ii)
                        && other.after.as_deref() == Some(alias.as_str())
                })
            });
        if shadowed {
            return Err(RewriteError::unsupported(format!(
                "{shown} cannot be pointed at the masked projection of {name}: another FROM item in scope is \
                 also named {alias}; give {name} an alias and qualify the column with it"
            )));
        }
        if let Some(wanted) = catalog {
            let item = &mut self.levels[li].items[ii];
            if item.replaced == Replaced::View && item.catalog != wanted {
                return Err(RewriteError::unsupported(format!(
                    "the database-qualified reference {shown} to view {name} cannot be rewritten; leave out \
                     the database name"
                )));
            }
            match &item.wanted_catalog {
                Some(other) if other != wanted => {
                    return Err(RewriteError::unsupported(format!(
                        "{shown} names database {wanted} where another reference names {other}: \
                         cross-database references are not possible"
                    )));
                }
                _ => item.wanted_catalog = Some(wanted.to_owned()),
            }
        }
        Ok(Resolution::Rename(alias))
    }

    /// `name.<field>`: pointed at the projection's new name when `name` is a renamed projection's
    /// original name; refused when the original was ambiguous (a bare name of relations in two schemas),
    /// which the renaming would otherwise resolve silently.
    pub(crate) fn by_name(&self, name: &str, shown: &str) -> Result<Resolution, RewriteError> {
        for (_, level) in self.visible_levels() {
            let mut matches = level
                .items
                .iter()
                .filter(|i| i.visible && i.before.as_deref() == Some(name));
            let Some(first) = matches.next() else {
                continue;
            };
            let more: Vec<&Item> = matches.collect();
            if !more.is_empty() {
                if first.renamed() || more.iter().any(|i| i.renamed()) {
                    return Err(ambiguous(name, shown));
                }
                return Ok(Resolution::Leave);
            }
            return Ok(match (&first.after, first.renamed()) {
                (Some(after), true) => Resolution::Rename(after.clone()),
                _ => Resolution::Leave,
            });
        }
        Ok(Resolution::Leave)
    }

    /// A bare `name`, which PostgreSQL reads as a column or else as a whole row: refused when it is a
    /// renamed projection's original name (ambiguous in the original, and no longer resolving to that
    /// item after the rewrite).
    pub(crate) fn bare(&self, name: &str) -> Result<(), RewriteError> {
        for (_, level) in self.visible_levels() {
            let mut matches = level
                .items
                .iter()
                .filter(|i| i.visible && i.before.as_deref() == Some(name))
                .peekable();
            if matches.peek().is_none() {
                continue;
            }
            if matches.any(Item::renamed) {
                return Err(ambiguous(name, name));
            }
            return Ok(());
        }
        Ok(())
    }
}

fn ambiguous(name: &str, shown: &str) -> RewriteError {
    RewriteError::unsupported(format!(
        "table reference {name} in {shown} is ambiguous (relations of that name in several schemas); \
         qualify the column with the schema or give the relations aliases"
    ))
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The reference names of the items of a FROM list, through unaliased and aliased joins alike (PostgreSQL
/// checks each join's sides for clashes too).
pub(crate) fn from_names(items: &[Node], out: &mut Vec<String>) {
    for item in items {
        if let Some(n) = &item.node {
            item_names(n, out);
        }
    }
}

fn item_names(n: &NodeEnum, out: &mut Vec<String>) {
    match n {
        NodeEnum::JoinExpr(j) => {
            for side in [&j.larg, &j.rarg].into_iter().flatten() {
                if let Some(inner) = &side.node {
                    item_names(inner, out);
                }
            }
            if let Some(a) = &j.alias {
                out.push(a.aliasname.clone());
            }
            if let Some(a) = &j.join_using_alias {
                out.push(a.aliasname.clone());
            }
        }
        NodeEnum::RangeTableSample(ts) => {
            if let Some(NodeEnum::RangeVar(rv)) = ts.relation.as_ref().and_then(|r| r.node.as_ref())
            {
                out.push(range_var_refname(rv));
            }
        }
        other => {
            if let Some(name) = item_refname(other) {
                out.push(name);
            }
        }
    }
}

/// The name a relation reference is referenced by: its alias, else the relation's name.
pub(crate) fn range_var_refname(rv: &protobuf::RangeVar) -> String {
    rv.alias
        .as_ref()
        .map_or_else(|| rv.relname.clone(), |a| a.aliasname.clone())
}

/// The reference name of a FROM item that is not a join or a relation reference: its alias, or for an
/// unaliased function the function's name (as PostgreSQL names it).
pub(crate) fn item_refname(n: &NodeEnum) -> Option<String> {
    match n {
        NodeEnum::RangeVar(rv) => Some(range_var_refname(rv)),
        NodeEnum::RangeSubselect(rs) => rs.alias.as_ref().map(|a| a.aliasname.clone()),
        NodeEnum::RangeFunction(rf) => {
            rf.alias.as_ref().map(|a| a.aliasname.clone()).or_else(|| {
                // `functions` holds one list (function call, column definitions) per function.
                let first = rf.functions.first()?;
                let Some(NodeEnum::List(list)) = &first.node else {
                    return None;
                };
                match list.items.first().and_then(|f| f.node.as_ref()) {
                    Some(NodeEnum::FuncCall(f)) => super::nodes::strings(&f.funcname).pop(),
                    _ => None,
                }
            })
        }
        NodeEnum::RangeTableFunc(t) => t.alias.as_ref().map(|a| a.aliasname.clone()),
        NodeEnum::JsonTable(t) => t.alias.as_ref().map(|a| a.aliasname.clone()),
        _ => None,
    }
}

/// Qualifies the relation inside each projection of `level` that catalog-qualified column references
/// named with that database, so PostgreSQL checks it is the current one as it would have for the
/// reference. `from` holds the level's (rewritten) FROM items.
pub(crate) fn apply_catalogs(level: &Level, from: &mut [Node]) -> Result<(), RewriteError> {
    for item in &level.items {
        let (Some(wanted), Some(alias)) = (&item.wanted_catalog, &item.after) else {
            continue;
        };
        if item.replaced == Replaced::View {
            // Allowed only when the view reference itself named that database (checked when resolved).
            continue;
        }
        let mut done = false;
        for n in from.iter_mut() {
            if let Some(inner) = n.node.as_mut() {
                set_catalog(inner, alias, wanted, &mut done)?;
            }
        }
        if !done {
            return Err(RewriteError::Internal(format!(
                "the projection named {alias} was not found to qualify with database {wanted}"
            )));
        }
    }
    Ok(())
}

fn set_catalog(
    n: &mut NodeEnum,
    alias: &str,
    wanted: &str,
    done: &mut bool,
) -> Result<(), RewriteError> {
    match n {
        NodeEnum::JoinExpr(j) => {
            for side in [&mut j.larg, &mut j.rarg].into_iter().flatten() {
                if let Some(inner) = side.node.as_mut() {
                    set_catalog(inner, alias, wanted, done)?;
                }
            }
            Ok(())
        }
        NodeEnum::RangeSubselect(rs)
            if !*done && rs.alias.as_ref().is_some_and(|a| a.aliasname == alias) =>
        {
            let relation = match rs.subquery.as_mut().and_then(|q| q.node.as_mut()) {
                Some(NodeEnum::SelectStmt(s)) => {
                    match s.from_clause.first_mut().and_then(|f| f.node.as_mut()) {
                        Some(NodeEnum::RangeVar(rv)) => Some(rv),
                        Some(NodeEnum::RangeTableSample(ts)) => {
                            match ts.relation.as_mut().and_then(|r| r.node.as_mut()) {
                                Some(NodeEnum::RangeVar(rv)) => Some(rv),
                                _ => None,
                            }
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some(rv) = relation else {
                return Err(RewriteError::Internal(format!(
                    "the projection named {alias} reads no relation"
                )));
            };
            if rv.catalogname.is_empty() {
                rv.catalogname = wanted.to_owned();
            } else if rv.catalogname != wanted {
                return Err(RewriteError::unsupported(format!(
                    "{alias} is read from database {} but referenced in database {wanted}: cross-database \
                     references are not possible",
                    rv.catalogname
                )));
            }
            *done = true;
            Ok(())
        }
        _ => Ok(()),
    }
}
