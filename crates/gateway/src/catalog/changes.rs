//! What changed in the catalog since a snapshot was read, worked out from the catalog itself, so that a
//! refresh re-reads only the relations that changed instead of the whole [`SNAPSHOT_QUERY`].
//!
//! Every read (full or not) first takes a [`Digest`] in the same REPEATABLE READ transaction as its rows:
//! the transaction snapshot's `xmin` (the *horizon*: every transaction older than it had ended, so whatever
//! it wrote is in the rows), for each relation the number of rows the other catalogs attach to it
//! (triggers, rules, policies, defaults, constraints, indexes, inheritance), and row counts and `xmin` sums
//! of the catalogs the snapshot keeps whole (schemas, casts, domains and their constraints).
//!
//! The next read asks for the same digest with the last horizon: a relation is *touched* when a row about
//! it — in `pg_class`, `pg_attribute`, `pg_trigger`, `pg_rewrite`, `pg_policy`, `pg_attrdef`,
//! `pg_constraint`, `pg_index`, `pg_inherits` — was written by a transaction at or after the horizon
//! (`age(xmin) <= age(horizon)`, which is exact while the horizon is less than 2³¹ transactions old, and
//! only over-reports for rows older than 2³² transactions), when a function it runs or a view of it calls
//! was written since, or when it is a view reading (or a child of) a touched relation: their rows print
//! its name. An insert or an update writes a new `xmin`; a delete leaves nothing to see, so a relation
//! whose attached rows are fewer than before is re-read too, and one that vanished is forgotten.
//!
//! Whatever the digest cannot account for makes the caller read everything: a schema, cast or domain
//! that changed (names and the code types run), a changed function that casts or domains call, a horizon
//! 2³⁰ transactions old, a relation neither touched nor known, more attached rows than before without a
//! new `xmin`, a snapshot that lacks view definitions, or one whose last full read is older than the
//! TTL (the backstop for anything else).
//!
//! [`SNAPSHOT_QUERY`]: super::SNAPSHOT_QUERY

use std::collections::{HashMap, HashSet};

use super::SNAPSHOT_QUERY;

/// Transactions since the last horizon beyond which `age()` could wrap: read everything instead.
const HORIZON_SPAN: u64 = 1 << 30;

/// The relations the snapshot keeps by OID: its `r` rows (see [`SNAPSHOT_QUERY`]).
const RELATIONS: &str = "SELECT c.oid, c.xmin FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r','v','m','f','p','S') AND n.nspname !~ '^pg_(toast|temp)'";

/// Rows of other catalogs about a relation, by the relation's OID.
const ATTACHED: &str = "SELECT t.tgrelid AS rel FROM pg_catalog.pg_trigger t \
     UNION ALL SELECT r.ev_class FROM pg_catalog.pg_rewrite r \
     UNION ALL SELECT p.polrelid FROM pg_catalog.pg_policy p \
     UNION ALL SELECT a.adrelid FROM pg_catalog.pg_attrdef a \
     UNION ALL SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE c.conrelid <> 0 \
     UNION ALL SELECT i.indrelid FROM pg_catalog.pg_index i \
     UNION ALL SELECT h.inhrelid FROM pg_catalog.pg_inherits h";

/// The catalogs kept whole: what changes in them changes names or the code types run everywhere.
const GLOBAL: &str = "SELECT pg_catalog.concat_ws(',', \
     (SELECT pg_catalog.count(*) || ':' || COALESCE(pg_catalog.sum(x.xmin::text::int8), 0) FROM pg_catalog.pg_namespace x), \
     (SELECT pg_catalog.count(*) || ':' || COALESCE(pg_catalog.sum(x.xmin::text::int8), 0) FROM pg_catalog.pg_cast x), \
     (SELECT pg_catalog.count(*) || ':' || COALESCE(pg_catalog.sum(x.xmin::text::int8), 0) FROM pg_catalog.pg_type x \
      WHERE x.typtype = 'd'), \
     (SELECT pg_catalog.count(*) || ':' || COALESCE(pg_catalog.sum(x.xmin::text::int8), 0) FROM pg_catalog.pg_constraint x \
      WHERE x.contypid <> 0))";

/// The query for a digest; with `since` (the last horizon), also which relations were touched after it
/// and whether a changed function is one that casts or domains call.
pub fn digest_query(since: Option<u64>) -> String {
    let Some(since) = since else {
        return format!(
            "/* catalog digest */ WITH rels AS ({RELATIONS}), attached AS ({ATTACHED}), \
             counts AS (SELECT rel, pg_catalog.count(*) AS n FROM attached GROUP BY rel) \
             SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text, \
             pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text, ({GLOBAL}), '', \
             (SELECT pg_catalog.string_agg(r.oid::text || ':' || COALESCE(k.n, 0), ',') \
             FROM rels r LEFT JOIN counts k ON k.rel = r.oid)"
        );
    };
    // The horizon's low 32 bits are the `xid` rows carry; `age()` of both is taken from the same moment.
    let xid = since & 0xffff_ffff;
    let new = "pg_catalog.age(x.xmin) <= (SELECT s.age FROM since s)";
    let regclass = |c: &str| format!("'pg_catalog.{c}'::pg_catalog.regclass");
    let (rewrite, trigger, attrdef, constraint, policy, class, proc_, operator, type_) = (
        regclass("pg_rewrite"),
        regclass("pg_trigger"),
        regclass("pg_attrdef"),
        regclass("pg_constraint"),
        regclass("pg_policy"),
        regclass("pg_class"),
        regclass("pg_proc"),
        regclass("pg_operator"),
        regclass("pg_type"),
    );
    format!(
        "/* catalog digest */ WITH RECURSIVE rels AS ({RELATIONS}), attached AS ({ATTACHED}), \
         counts AS (SELECT x.rel, pg_catalog.count(*) AS n FROM attached x \
         WHERE x.rel IN (SELECT oid FROM spread) GROUP BY x.rel), \
         since AS (SELECT pg_catalog.age('{xid}'::pg_catalog.xid) AS age), \
         procs AS (SELECT x.oid FROM pg_catalog.pg_proc x WHERE {new}), \
         calling AS (SELECT d.classid, d.objid FROM pg_catalog.pg_depend d \
         WHERE (d.refclassid = {proc_} AND d.refobjid IN (SELECT oid FROM procs)) \
         OR (d.refclassid = {operator} AND d.refobjid IN (SELECT o.oid FROM pg_catalog.pg_operator o \
         WHERE o.oprcode::pg_catalog.oid IN (SELECT oid FROM procs)))), \
         touched AS (SELECT x.oid FROM rels x WHERE {new} \
         UNION SELECT x.attrelid FROM pg_catalog.pg_attribute x WHERE {new} \
         UNION SELECT x.tgrelid FROM pg_catalog.pg_trigger x WHERE {new} \
         UNION SELECT x.ev_class FROM pg_catalog.pg_rewrite x WHERE {new} \
         UNION SELECT x.polrelid FROM pg_catalog.pg_policy x WHERE {new} \
         UNION SELECT x.adrelid FROM pg_catalog.pg_attrdef x WHERE {new} \
         UNION SELECT x.conrelid FROM pg_catalog.pg_constraint x WHERE {new} AND x.conrelid <> 0 \
         UNION SELECT x.indrelid FROM pg_catalog.pg_index x WHERE {new} \
         UNION SELECT x.inhrelid FROM pg_catalog.pg_inherits x WHERE {new} \
         UNION SELECT CASE k.classid \
         WHEN {rewrite} THEN (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid = k.objid) \
         WHEN {trigger} THEN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = k.objid) \
         WHEN {attrdef} THEN (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid = k.objid) \
         WHEN {constraint} THEN (SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE c.oid = k.objid) \
         WHEN {policy} THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = k.objid) \
         WHEN {class} THEN COALESCE((SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = k.objid), \
         k.objid) END FROM calling k), \
         spread(oid) AS (SELECT oid FROM touched UNION SELECT e.child FROM spread s, LATERAL \
         (SELECT r.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid \
         WHERE d.classid = {rewrite} AND d.refclassid = {class} AND d.refobjid = s.oid \
         UNION ALL SELECT h.inhrelid FROM pg_catalog.pg_inherits h WHERE h.inhparent = s.oid) e(child)) \
         SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text, \
         pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text, ({GLOBAL}), \
         CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_cast c WHERE c.castfunc IN (SELECT oid FROM procs)) \
         OR EXISTS (SELECT 1 FROM calling k WHERE k.classid = {type_} OR (k.classid = {constraint} \
         AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.oid = k.objid AND c.contypid <> 0))) \
         THEN 't' ELSE '' END, \
         (SELECT pg_catalog.string_agg(r.oid::text || ':' || COALESCE(k.n, 0) || ':t', ',') \
         FROM rels r JOIN (SELECT DISTINCT oid FROM spread) s ON s.oid = r.oid \
         LEFT JOIN counts k ON k.rel = r.oid), \
         (SELECT pg_catalog.count(*) || ':' || COALESCE(pg_catalog.sum(r.oid::int8), 0) FROM rels r \
         LEFT JOIN (SELECT DISTINCT oid FROM spread) s ON s.oid = r.oid WHERE s.oid IS NULL) || ':' || \
         (SELECT pg_catalog.count(*) FROM attached a JOIN rels r ON r.oid = a.rel \
         LEFT JOIN (SELECT DISTINCT oid FROM spread) s ON s.oid = r.oid WHERE s.oid IS NULL)"
    )
}

/// [`SNAPSHOT_QUERY`]'s rows about the relations `dirty`, and the rows it keeps whole that are cheap to
/// read again (functions, operators, event triggers, the path definitions are printed under).
pub fn delta_query(dirty: &HashSet<u32>) -> String {
    let mut oids: Vec<u32> = dirty.iter().copied().collect();
    oids.sort_unstable();
    let list = oids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let oids = format!("'{{{list}}}'::pg_catalog.oid[]");
    // The planner does not carry the relation filter through the join into `fires`, whose column-type
    // branch would then read all of `pg_attribute`: filter `fires` itself.
    let query = SNAPSHOT_QUERY.replace(
        FIRES_JOIN,
        &format!("{FIRES_JOIN} AND f.rel = ANY ({oids})"),
    );
    format!(
        "/* catalog delta */ SELECT s.kind, s.schema, s.name, s.a, s.b FROM ({query}) \
         s(kind, schema, name, a, b, rel) WHERE s.rel = ANY ({oids}) OR s.kind IN ('f', 'o', 'e', 'p')"
    )
}

/// How [`SNAPSHOT_QUERY`] joins the relations that run untrusted code to their names.
const FIRES_JOIN: &str = "FROM fires f JOIN pg_catalog.pg_class c ON c.oid = f.rel";

/// What a digest said.
#[derive(Debug, Clone)]
pub struct Digest {
    /// The transaction snapshot's `xmin`, with its epoch.
    pub horizon: u64,
    /// The snapshot's `xmax`, with its epoch.
    pub xmax: u64,
    /// Counts and `xmin` sums of the catalogs kept whole.
    pub global: String,
    /// A function changed since the last horizon is one that a cast or a domain calls.
    pub type_code_changed: bool,
    /// Attached rows by relation: of every relation, or (with a horizon) of the touched ones.
    pub counts: HashMap<u32, u32>,
    /// The relations touched since the last horizon (empty without one).
    pub touched: HashSet<u32>,
    /// With a horizon, of the relations not touched: how many there are, the sum of their OIDs and the
    /// number of rows attached to them.
    pub untouched: Option<(u64, u64, u64)>,
}

impl Digest {
    /// The digest in the row of [`digest_query`]; `None` when the row is not what the query returns.
    pub fn parse(rows: Vec<Vec<Option<String>>>) -> Option<Digest> {
        let mut columns = rows.into_iter().next()?.into_iter();
        let horizon = columns.next()??.parse().ok()?;
        let xmax = columns.next()??.parse().ok()?;
        let global = columns.next()??;
        let type_code_changed = columns.next()?.is_some_and(|t| t == "t");
        // NULL when there is no relation at all.
        let listed = columns.next()?.unwrap_or_default();
        let mut counts = HashMap::new();
        let mut touched = HashSet::new();
        for entry in listed.split(',').filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let oid: u32 = parts.next()?.parse().ok()?;
            let count: u32 = parts.next()?.parse().ok()?;
            if parts.next() == Some("t") {
                touched.insert(oid);
            }
            counts.insert(oid, count);
        }
        let untouched = match columns.next().flatten() {
            Some(rest) => {
                let mut parts = rest.split(':').map(str::parse::<u64>);
                Some((
                    parts.next()?.ok()?,
                    parts.next()?.ok()?,
                    parts.next()?.ok()?,
                ))
            }
            None => None,
        };
        Some(Digest {
            horizon,
            xmax,
            global,
            type_code_changed,
            counts,
            touched,
            untouched,
        })
    }
}

/// What an incremental read must do: forget the relations `gone`, and read again those in `dirty`.
#[derive(Debug, Default)]
pub struct Delta {
    /// Relations to read again (changed, or with fewer attached rows than before).
    pub dirty: HashSet<u32>,
    /// Relations no longer there.
    pub gone: Vec<u32>,
    /// Attached rows of every relation the snapshot will know, for the next read to compare.
    pub counts: HashMap<u32, u32>,
}

/// What the next step of an incremental read is.
#[derive(Debug)]
pub enum Plan {
    /// Read these relations again.
    Read(Delta),
    /// Relations vanished or lost attached rows: which, a listing of every relation's count says.
    List,
    /// Only a full read can be sure.
    Full,
}

/// What to re-read, given the digest `last` a snapshot was read with, the relations that snapshot knows
/// (`known`), a digest `now` taken with `last`'s horizon and, when [`Plan::List`] asked for it, a digest
/// `listing` without a horizon taken in the same transaction.
pub fn plan(last: &Digest, known: &HashSet<u32>, now: &Digest, listing: Option<&Digest>) -> Plan {
    if now.global != last.global
        || now.type_code_changed
        || now.xmax.saturating_sub(last.horizon) >= HORIZON_SPAN
        || now.horizon < last.horizon
    {
        return Plan::Full;
    }
    let Some((relations, oid_sum, attached)) = now.untouched else {
        return Plan::Full;
    };
    let mut delta = Delta {
        dirty: now.touched.clone(),
        ..Delta::default()
    };
    // Untouched: there at the last read, with at least as many attached rows.
    let kept: Vec<u32> = known
        .iter()
        .filter(|oid| !now.touched.contains(oid))
        .copied()
        .collect();
    let Some(listing) = listing else {
        let count = kept.len() as u64;
        let sum: u64 = kept.iter().map(|oid| u64::from(*oid)).sum();
        let before: Option<u64> = kept
            .iter()
            .map(|oid| last.counts.get(oid).map(|n| u64::from(*n)))
            .sum();
        return match (count == relations && sum == oid_sum, before) {
            // Every relation the snapshot knows and did not see touched is there, with the rows it had.
            (true, Some(before)) if before == attached => {
                delta.counts = kept
                    .iter()
                    .filter_map(|oid| Some((*oid, *last.counts.get(oid)?)))
                    .chain(now.counts.iter().map(|(oid, n)| (*oid, *n)))
                    .collect();
                Plan::Read(delta)
            }
            // Fewer relations, or fewer rows: find which.
            (_, Some(before)) if count >= relations && before >= attached => Plan::List,
            _ => Plan::Full,
        };
    };
    for (oid, count) in &listing.counts {
        if delta.dirty.contains(oid) {
            continue;
        }
        let Some(before) = last.counts.get(oid).filter(|_| known.contains(oid)) else {
            return Plan::Full;
        };
        if count > before {
            return Plan::Full;
        }
        if count < before {
            delta.dirty.insert(*oid);
        }
    }
    delta.gone = kept
        .into_iter()
        .filter(|oid| !listing.counts.contains_key(oid))
        .collect();
    delta.counts = listing.counts.clone();
    Plan::Read(delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(horizon: u64, counts: &[(u32, u32)], touched: &[u32]) -> Digest {
        let counts: HashMap<u32, u32> = counts.iter().copied().collect();
        Digest {
            horizon,
            xmax: horizon + 5,
            global: "g".into(),
            type_code_changed: false,
            counts,
            touched: touched.iter().copied().collect(),
            untouched: None,
        }
    }

    /// A digest with a horizon: counts of the touched relations, totals of the others (from `all`).
    fn since(horizon: u64, all: &[(u32, u32)], touched: &[u32]) -> Digest {
        let mut d = digest(horizon, all, touched);
        let rest: Vec<(u32, u32)> = all
            .iter()
            .filter(|(oid, _)| !touched.contains(oid))
            .copied()
            .collect();
        d.counts.retain(|oid, _| touched.contains(oid));
        d.untouched = Some((
            rest.len() as u64,
            rest.iter().map(|(o, _)| u64::from(*o)).sum(),
            rest.iter().map(|(_, n)| u64::from(*n)).sum(),
        ));
        d
    }

    #[test]
    fn the_delta_filters_what_runs_untrusted_code() {
        assert_eq!(SNAPSHOT_QUERY.matches(FIRES_JOIN).count(), 1);
        let query = delta_query(&[7, 3].into());
        assert!(
            query.contains("f.rel = ANY ('{3,7}'::pg_catalog.oid[])"),
            "{query}"
        );
    }

    #[test]
    fn parses_the_digest_row() {
        let row = vec![
            Some("700".into()),
            Some("710".into()),
            Some("1:5,2:0".into()),
            Some("".into()),
            Some("16384:3,16390:0:t".into()),
            Some("2:33000:7".into()),
        ];
        let d = Digest::parse(vec![row]).unwrap();
        assert_eq!(
            (d.horizon, d.xmax, d.global.as_str()),
            (700, 710, "1:5,2:0")
        );
        assert_eq!(d.counts[&16384], 3);
        assert!(d.touched.contains(&16390) && !d.touched.contains(&16384));
        assert_eq!(d.untouched, Some((2, 33000, 7)));
        assert!(Digest::parse(vec![vec![Some("x".into())]]).is_none());
    }

    fn read(plan: Plan) -> Delta {
        match plan {
            Plan::Read(delta) => delta,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn touched_fewer_and_gone_relations_are_reread_and_anything_unexplained_is_not() {
        let known: HashSet<u32> = [1, 2, 3, 4].into();
        let last = digest(100, &[(1, 2), (2, 2), (3, 1), (4, 0)], &[]);

        // Only touched ones (1 changed, 5 new): read them, nothing else to find.
        let now = since(120, &[(1, 3), (2, 2), (3, 1), (4, 0), (5, 0)], &[1, 5]);
        let d = read(plan(&last, &known, &now, None));
        assert_eq!(d.dirty, [1, 5].into());
        assert!(d.gone.is_empty());
        assert_eq!(d.counts[&1], 3);
        assert_eq!(d.counts[&2], 2);

        // 2 lost an attached row, 3 was dropped: the totals say so, a listing says which.
        let all = [(1, 2), (2, 1), (4, 0), (5, 0)];
        let now = since(120, &all, &[1, 5]);
        assert!(matches!(plan(&last, &known, &now, None), Plan::List));
        let listing = digest(120, &all, &[]);
        let d = read(plan(&last, &known, &now, Some(&listing)));
        assert_eq!(d.dirty, [1, 2, 5].into());
        assert_eq!(d.gone, vec![3]);

        // More attached rows without a new xmin, or an unknown untouched relation: read everything.
        let more = since(120, &[(1, 2), (2, 2), (3, 1), (4, 1)], &[]);
        assert!(matches!(plan(&last, &known, &more, None), Plan::Full));
        let unknown = [(1, 2), (2, 2), (3, 1), (4, 0), (6, 0)];
        assert!(matches!(
            plan(&last, &known, &since(120, &unknown, &[]), None),
            Plan::Full
        ));
        let listing = digest(120, &[(1, 2), (2, 2), (4, 0), (6, 0)], &[]);
        let now = since(120, &[(1, 2), (2, 2), (4, 0), (6, 0)], &[]);
        assert!(matches!(
            plan(&last, &known, &now, Some(&listing)),
            Plan::Full
        ));
        // Schemas, casts or domains changed; a horizon too old; a function types call changed.
        let quiet = [(1, 2), (2, 2), (3, 1), (4, 0)];
        let mut global = since(120, &quiet, &[]);
        global.global = "h".into();
        assert!(matches!(plan(&last, &known, &global, None), Plan::Full));
        let mut old = since(120, &quiet, &[]);
        old.xmax = 100 + HORIZON_SPAN;
        assert!(matches!(plan(&last, &known, &old, None), Plan::Full));
        let mut types = since(120, &quiet, &[]);
        types.type_code_changed = true;
        assert!(matches!(plan(&last, &known, &types, None), Plan::Full));
        assert!(read(plan(&last, &known, &since(120, &quiet, &[]), None))
            .dirty
            .is_empty());
    }
}
