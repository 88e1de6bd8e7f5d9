//! Top users and top objects of the audit page's statements, as server-rendered SVG bar charts (no
//! script: the content security policy allows none inline, and none is needed to draw bars).

use std::collections::HashMap;

use portcullis_store::{AuditEvent, AuditRecord};

use super::html::esc;

/// Bars per chart.
const TOP: usize = 8;

/// Statements and denials per name.
#[derive(Default, Clone, Copy)]
struct Count {
    all: u32,
    denied: u32,
}

/// Four charts: users and objects, each ranked by statements and by denials. An object counts once
/// per statement that touches it.
pub fn top(records: &[AuditRecord]) -> String {
    let mut users: HashMap<&str, Count> = HashMap::new();
    let mut objects: HashMap<&str, Count> = HashMap::new();
    for r in records {
        let AuditEvent::Statement(s) = &r.event else {
            continue;
        };
        let deny = s.decision == "deny";
        let bump = |c: &mut Count| {
            c.all += 1;
            c.denied += u32::from(deny);
        };
        bump(users.entry(s.user.as_str()).or_default());
        let mut seen: Vec<&str> = s.objects.iter().map(|o| o.name.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for name in seen {
            bump(objects.entry(name).or_default());
        }
    }
    if users.is_empty() {
        return String::new();
    }
    let mut html = String::from(r#"<div class="grid2 tops">"#);
    for (title, counts, id) in [("users", &users, "users"), ("objects", &objects, "objects")] {
        for by_denials in [false, true] {
            html.push_str(&chart(title, id, counts, by_denials));
        }
    }
    html.push_str("</div>");
    html
}

/// One horizontal bar chart: the top names by statements (or by denials), each bar statements in
/// blue with its denials in red over it.
fn chart(title: &str, id: &str, counts: &HashMap<&str, Count>, by_denials: bool) -> String {
    let key = |c: &Count| if by_denials { c.denied } else { c.all };
    let mut ranked: Vec<(&str, Count)> = counts
        .iter()
        .map(|(n, c)| (*n, *c))
        .filter(|(_, c)| key(c) > 0)
        .collect();
    // Ties in name order, so a page shows the same chart on every load.
    ranked.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(b.0)));
    ranked.truncate(TOP);
    let what = if by_denials { "denials" } else { "statements" };
    let heading = format!("Top {title} by {what}");
    if ranked.is_empty() {
        return format!(
            r#"<div class="card"><h3>{}</h3><p class="muted">None.</p></div>"#,
            esc(&heading)
        );
    }
    let top = ranked.iter().map(|(_, c)| c.all.max(1)).max().unwrap_or(1);
    let (w, label, row) = (360u32, 130u32, 22u32);
    let bar_w = w - label - 50;
    let h = row * u32::try_from(ranked.len()).unwrap_or(1);
    let mut svg = format!(
        r#"<div class="card"><h3>{}</h3><svg class="chart top" id="top-{id}-{what}" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}: statements (blue) and denials (red)</title>"#,
        esc(&heading),
        esc(&heading),
        esc(&heading)
    );
    for (i, (name, c)) in ranked.iter().enumerate() {
        let y = row * u32::try_from(i).unwrap_or(0);
        let wa = c.all * bar_w / top;
        let wd = c.denied * bar_w / top;
        let shown: String = if name.chars().count() > 20 {
            format!("{}…", name.chars().take(19).collect::<String>())
        } else {
            (*name).to_owned()
        };
        svg.push_str(&format!(
            r#"<g><title>{name}: {all} statement(s), {denied} denied</title><text x="{tx}" y="{ty}" text-anchor="end">{shown}</text><rect class="bar-all" x="{label}" y="{by}" width="{wa}" height="{bh}"/><rect class="bar-deny" x="{label}" y="{by}" width="{wd}" height="{bh}"/><text x="{nx}" y="{ty}">{n}</text></g>"#,
            name = esc(name),
            all = c.all,
            denied = c.denied,
            tx = label - 6,
            ty = y + 15,
            shown = esc(&shown),
            by = y + 3,
            bh = row - 6,
            nx = label + wa + 4,
            n = if by_denials { c.denied } else { c.all },
        ));
    }
    svg.push_str("</svg></div>");
    svg
}
