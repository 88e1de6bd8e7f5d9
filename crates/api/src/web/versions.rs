//! The policy's applied versions (auditors and admins) and what each changed against the one before:
//! the list is the JSON API's `GET /api/v1/policy/versions`, a version `GET …/versions/{version}`.

use axum::extract::{Path, State};
use axum::response::Html;

use super::audit::reader;
use super::diff::{self, Line};
use super::html::{esc, layout, millis, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::extract::Params;
use crate::routes::policy::{self, PolicyView};

/// `GET /web/policy/versions`: every version, newest (in force) first, each with a link to its diff.
pub async fn list(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let all = policy::versions(State(state.api.clone()), reader(&viewer)?)
        .await
        .map_err(WebError::from)?
        .0;
    let mut body = format!(
        r#"<p class="muted">{} version(s), newest first; the first is in force. Each links to what it changed against the one before.</p><div class="scroll"><table id="versions"><tr><th>Version</th><th>Applied</th><th>By</th><th>Source</th><th>Lines</th><th></th></tr>"#,
        all.len()
    );
    for (i, p) in all.iter().enumerate() {
        body.push_str(&format!(
            r#"<tr id="version-{v}"><td>{v}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href="/web/policy/versions/{v}">diff</a></td></tr>"#,
            if i == 0 {
                r#" <span class="badge allow">in force</span>"#
            } else {
                ""
            },
            millis(p.applied_at),
            esc(&p.applied_by),
            esc(&p.source),
            p.text.lines().count(),
            v = p.version,
        ));
    }
    body.push_str("</table></div>");
    Ok(layout(Some(&viewer), "Policy versions", &body))
}

/// `GET /web/policy/versions/{version}`: the line diff of a version against the one applied before it
/// (the first version against nothing).
pub async fn diff(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(version): Path<i64>,
) -> WebResult<Html<String>> {
    let new = policy::version(State(state.api.clone()), reader(&viewer)?, Params(version))
        .await
        .map_err(WebError::from)?
        .0;
    let before = state
        .api
        .blocking(move |store, _| Ok(store.policy_before(version)?))
        .await
        .map_err(WebError::from)?
        .map(PolicyView::from);
    let old_text = before.as_ref().map_or("", |p| p.text.as_str());
    let lines = diff::lines(old_text, &new.text);
    let added = lines.iter().filter(|l| matches!(l, Line::Added(_))).count();
    let removed = lines
        .iter()
        .filter(|l| matches!(l, Line::Removed(_)))
        .count();
    let against = match &before {
        Some(p) => format!(
            r#"against <a href="/web/policy/versions/{v}">version {v}</a> ({}, {})"#,
            millis(p.applied_at),
            esc(&p.applied_by),
            v = p.version
        ),
        None => "the first version: everything is new".to_owned(),
    };
    let mut body = format!(
        r#"<p>Version {} from {} · applied {} by {} · {against}</p><p class="muted"><span class="diff-add">+{added}</span> <span class="diff-del">−{removed}</span> line(s) · <a href="/web/policy/versions">all versions</a></p><pre class="diff" id="diff">"#,
        new.version,
        esc(&new.source),
        millis(new.applied_at),
        esc(&new.applied_by),
    );
    for line in &lines {
        let (class, mark, text) = match line {
            Line::Same(t) => ("same", ' ', t),
            Line::Removed(t) => ("del", '-', t),
            Line::Added(t) => ("add", '+', t),
        };
        body.push_str(&format!(
            r#"<span class="{class}">{mark} {}</span>
"#,
            esc(text)
        ));
    }
    body.push_str("</pre>");
    Ok(layout(
        Some(&viewer),
        &format!("Policy version {}", new.version),
        &body,
    ))
}
