//! The SQL console: statements typed in the browser run through the gateway's own PostgreSQL listener,
//! as the signed-in user, so they meet exactly what a psql user meets — analysis, policy, masking,
//! approval and MFA holds, audit records (application `portcullis-console`). The portal logs in with a
//! short-lived API login token of the user (the gateway accepts one as the password of a
//! `portcullis-console` connection) and never sees or keeps the user's password.
//!
//! A statement runs in a background task; the page polls for its end, so a statement the gateway holds
//! for MFA or approval does not hold an HTTP request. Results are kept per browser session (at most
//! [`MAX_ROWS`] rows) and shown [`PAGE_ROWS`] at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Html;
use axum::Form;
use futures_util::StreamExt;
use portcullis_store::NewApiToken;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

use super::html::{csrf_field, esc, layout, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::state::{now_millis, ApiState};

/// The application name console sessions carry (the gateway logs them in with a ticket).
pub const CONSOLE_APPLICATION: &str = "portcullis-console";
/// Rows of one result kept for paging; the rest are not read.
pub const MAX_ROWS: usize = 10_000;
/// Rows on one page of the grid.
pub const PAGE_ROWS: usize = 100;
/// How long the run request waits for a quick statement before the page polls.
const QUICK: Duration = Duration::from_secs(3);
/// How long a console ticket may be used to log in.
const TICKET_MILLIS: i64 = 60_000;
/// Statements kept in the history.
const HISTORY: usize = 50;

/// One browser session's console: its connections (one per resource), the running or last statement
/// and the history.
#[derive(Default)]
pub struct Console {
    conns: tokio::sync::Mutex<HashMap<String, tokio_postgres::Client>>,
    view: Mutex<View>,
    notices: Arc<Mutex<Vec<String>>>,
    done: Notify,
}

#[derive(Default)]
struct View {
    next_id: u64,
    job: Option<Job>,
    history: Vec<Past>,
}

struct Job {
    id: u64,
    resource: String,
    sql: String,
    started: Instant,
    notice_mark: usize,
    phase: &'static str,
    outcome: Option<Outcome>,
}

struct Past {
    at: String,
    resource: String,
    sql: String,
    summary: String,
    ok: bool,
}

enum Outcome {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
        tags: Vec<String>,
        truncated: bool,
        elapsed: Duration,
    },
    Failed {
        code: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
        elapsed: Duration,
    },
}

impl Outcome {
    fn failed(message: impl Into<String>, elapsed: Duration) -> Outcome {
        Outcome::Failed {
            code: String::new(),
            message: message.into(),
            detail: None,
            hint: None,
            elapsed,
        }
    }

    fn summary(&self) -> (String, bool) {
        match self {
            Outcome::Rows { rows, tags, .. } => (
                if tags.is_empty() {
                    format!("{} row(s)", rows.len())
                } else {
                    tags.join("; ")
                },
                true,
            ),
            Outcome::Failed { code, message, .. } => (format!("{code} {message}"), false),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain values: a panic elsewhere cannot leave them half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The run form.
#[derive(Deserialize)]
pub struct RunForm {
    resource: String,
    sql: String,
}

/// Which page of the result.
#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: usize,
}

impl Console {
    /// Logs in to the gateway as `user` on `resource` with a fresh ticket, unless connected already.
    async fn connect(
        &self,
        api: &ApiState,
        user: &str,
        resource: &str,
    ) -> Result<tokio_postgres::Client, String> {
        let addr = api.config().gateway_addr.ok_or_else(|| {
            "the console is not available: this API does not run beside a gateway".to_owned()
        })?;
        let name = user.to_owned();
        let ticket = api
            .blocking(move |store, clock| {
                let now = now_millis(clock);
                let token = NewApiToken::Login { user: name };
                Ok(store
                    .create_api_token(&token, now, Some(now.saturating_add(TICKET_MILLIS)))?
                    .secret)
            })
            .await
            .map_err(|e| e.message)?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(addr.ip().to_string())
            .port(addr.port())
            .user(user)
            .password(ticket)
            .dbname(resource)
            .application_name(CONSOLE_APPLICATION)
            .connect_timeout(Duration::from_secs(10));
        let (client, mut connection) = config.connect(NoTls).await.map_err(|e| describe(&e).1)?;
        let notices = Arc::clone(&self.notices);
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notice(n))) => {
                        let mut text = n.message().to_owned();
                        if let Some(hint) = n.hint().filter(|h| !text.contains(*h)) {
                            text.push_str(" — ");
                            text.push_str(hint);
                        }
                        lock(&notices).push(text);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        });
        Ok(client)
    }

    async fn execute(self: Arc<Self>, api: ApiState, user: String, resource: String, sql: String) {
        let started = Instant::now();
        let mut conns = self.conns.lock().await;
        if conns.get(&resource).is_some_and(|c| c.is_closed()) {
            conns.remove(&resource);
        }
        if !conns.contains_key(&resource) {
            self.set_phase("connecting");
            match self.connect(&api, &user, &resource).await {
                Ok(client) => {
                    conns.insert(resource.clone(), client);
                }
                Err(message) => {
                    drop(conns);
                    self.finish(Outcome::failed(message, started.elapsed()));
                    return;
                }
            }
        }
        self.set_phase("running");
        let outcome = match conns.get(&resource) {
            Some(client) => query(client, &sql, started).await,
            None => Outcome::failed("no connection", started.elapsed()),
        };
        if conns.get(&resource).is_some_and(|c| c.is_closed()) {
            conns.remove(&resource);
        }
        drop(conns);
        self.finish(outcome);
    }

    fn set_phase(&self, phase: &'static str) {
        if let Some(job) = lock(&self.view).job.as_mut() {
            job.phase = phase;
        }
    }

    fn finish(&self, outcome: Outcome) {
        let mut view = lock(&self.view);
        let (summary, ok) = outcome.summary();
        if let Some(job) = view.job.as_mut() {
            let past = Past {
                at: super::html::micros(
                    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000)
                        .unwrap_or(0),
                ),
                resource: job.resource.clone(),
                sql: job.sql.clone(),
                summary,
                ok,
            };
            job.outcome = Some(outcome);
            view.history.insert(0, past);
            view.history.truncate(HISTORY);
        }
        drop(view);
        self.done.notify_waiters();
    }
}

/// SQLSTATE and message of a failed statement, as the gateway (or PostgreSQL) said them.
fn describe(e: &tokio_postgres::Error) -> (String, String, Option<String>, Option<String>) {
    match e.as_db_error() {
        Some(db) => (
            db.code().code().to_owned(),
            db.message().to_owned(),
            db.detail().map(str::to_owned),
            db.hint().map(str::to_owned),
        ),
        None => (String::new(), e.to_string(), None, None),
    }
}

async fn query(client: &tokio_postgres::Client, sql: &str, started: Instant) -> Outcome {
    let stream = match client.simple_query_raw(sql).await {
        Ok(s) => s,
        Err(e) => return failed(&e, started),
    };
    let mut stream = std::pin::pin!(stream);
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    let mut tags = Vec::new();
    let mut truncated = false;
    while let Some(message) = stream.next().await {
        match message {
            Ok(SimpleQueryMessage::RowDescription(cols)) => {
                columns = cols.iter().map(|c| c.name().to_owned()).collect();
                rows.clear();
                truncated = false;
            }
            Ok(SimpleQueryMessage::Row(row)) => {
                if rows.len() < MAX_ROWS {
                    rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    );
                } else {
                    truncated = true;
                }
            }
            Ok(SimpleQueryMessage::CommandComplete(n)) => tags.push(format!("{n} row(s)")),
            Ok(_) => {}
            Err(e) => return failed(&e, started),
        }
    }
    Outcome::Rows {
        columns,
        rows,
        tags,
        truncated,
        elapsed: started.elapsed(),
    }
}

fn failed(e: &tokio_postgres::Error, started: Instant) -> Outcome {
    let (code, message, detail, hint) = describe(e);
    Outcome::Failed {
        code,
        message,
        detail,
        hint,
        elapsed: started.elapsed(),
    }
}

/// Notices mention the MFA page: link it.
fn notice_html(text: &str) -> String {
    let mut html = format!(r#"<p class="notice">{}</p>"#, esc(text));
    if text.contains("MFA") {
        html.push_str(r#"<p><a class="button" href="/web/mfa" target="_blank" rel="noopener">Verify MFA</a> <span class="muted">The statement goes on once you verify.</span></p>"#);
    }
    html
}

fn job_html(console: &Console, page_no: usize) -> String {
    let view = lock(&console.view);
    let Some(job) = view.job.as_ref() else {
        return r#"<div id="job"></div>"#.to_owned();
    };
    let notices: String = lock(&console.notices)
        .iter()
        .skip(job.notice_mark)
        .map(|n| notice_html(n))
        .collect();
    let head = format!(
        r#"<p class="muted">#{} on {}: <code>{}</code></p>"#,
        job.id,
        esc(&job.resource),
        esc(&one_line(&job.sql, 200))
    );
    let Some(outcome) = &job.outcome else {
        let waited = job.started.elapsed().as_secs();
        let phase = if job.phase == "connecting" {
            "Connecting to the gateway"
        } else {
            "Running"
        };
        return format!(
            r#"<div id="job" hx-get="/web/console/job" hx-trigger="every 1s" hx-swap="outerHTML">{head}{notices}<p class="running">{phase}… {waited}s. <span class="muted">If the gateway holds it for MFA or approval, it says so here.</span></p></div>"#
        );
    };
    let body = match outcome {
        Outcome::Failed {
            code,
            message,
            detail,
            hint,
            elapsed,
        } => {
            let mut text = format!(
                r#"<div class="flash bad" role="alert" id="error"><b>ERROR {}</b>: {}"#,
                esc(code),
                esc(message)
            );
            for (label, part) in [("Detail", detail), ("Hint", hint)] {
                if let Some(p) = part {
                    text.push_str(&format!("<br><b>{label}:</b> {}", esc(p)));
                }
            }
            text.push_str(&format!(
                r#"</div><p class="muted">after {} ms</p>"#,
                elapsed.as_millis()
            ));
            text
        }
        Outcome::Rows {
            columns,
            rows,
            tags,
            truncated,
            elapsed,
        } => grid(columns, rows, tags, *truncated, *elapsed, page_no),
    };
    format!(r#"<div id="job">{head}{notices}{body}</div>"#)
}

fn grid(
    columns: &[String],
    rows: &[Vec<Option<String>>],
    tags: &[String],
    truncated: bool,
    elapsed: Duration,
    page_no: usize,
) -> String {
    let pages = rows.len().div_ceil(PAGE_ROWS).max(1);
    let page_no = page_no.min(pages - 1);
    let mut html = format!(
        r#"<p class="ok" role="status">{} · {} ms{}</p>"#,
        esc(&tags.join("; ")),
        elapsed.as_millis(),
        if truncated {
            format!(" · only the first {MAX_ROWS} rows are kept")
        } else {
            String::new()
        }
    );
    if columns.is_empty() {
        return html;
    }
    html.push_str(r#"<div class="scroll"><table class="result"><thead><tr>"#);
    for c in columns {
        html.push_str(&format!("<th>{}</th>", esc(c)));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows.iter().skip(page_no * PAGE_ROWS).take(PAGE_ROWS) {
        html.push_str("<tr>");
        for cell in row {
            match cell {
                Some(v) => html.push_str(&format!("<td>{}</td>", esc(v))),
                None => html.push_str(r#"<td class="null">NULL</td>"#),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    if pages > 1 {
        let nav = |n: usize, label: &str| {
            format!(
                r##"<button type="button" class="secondary" hx-get="/web/console/job?page={n}" hx-target="#job" hx-swap="outerHTML">{label}</button>"##
            )
        };
        html.push_str(&format!(
            r#"<div class="pager">{}<span>page {} of {pages} · {} rows</span>{}</div>"#,
            if page_no > 0 {
                nav(page_no - 1, "‹ Previous")
            } else {
                String::new()
            },
            page_no + 1,
            rows.len(),
            if page_no + 1 < pages {
                nav(page_no + 1, "Next ›")
            } else {
                String::new()
            },
        ));
    }
    html
}

fn history_html(console: &Console, oob: bool) -> String {
    let view = lock(&console.view);
    let mut html = format!(
        r#"<div id="history"{}><h2>History</h2>"#,
        if oob { r#" hx-swap-oob="true""# } else { "" }
    );
    if view.history.is_empty() {
        html.push_str(r#"<p class="muted">Statements you run appear here.</p>"#);
    }
    for p in &view.history {
        html.push_str(&format!(
            r#"<div class="card step {}"><p class="muted">{} · {}</p><pre>{}</pre><p>{}</p></div>"#,
            if p.ok { "allow" } else { "error" },
            esc(&p.at),
            esc(&p.resource),
            esc(&p.sql),
            esc(&p.summary)
        ));
    }
    html.push_str("</div>");
    html
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// `GET /web/console`: the statement form, the last result and the history.
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let resources = state
        .api
        .blocking(|store, _| Ok(store.list_resources()?))
        .await
        .map_err(WebError::from)?;
    let options: String = resources
        .iter()
        .map(|r| format!("<option>{}</option>", esc(&r.name)))
        .collect();
    let body = format!(
        r##"<form class="stack card" id="console-form" method="post" action="/web/console/run" hx-post="/web/console/run" hx-target="#job" hx-swap="outerHTML">{csrf}
<label>Resource <select name="resource">{options}</select></label>
<label>Statement <textarea name="sql" required spellcheck="false" placeholder="SELECT …"></textarea></label>
<button type="submit">Run</button>
<p class="muted">Runs through the gateway as {user}: the same policy, masking, approvals, MFA and audit as psql.</p></form>
{job}{history}"##,
        csrf = csrf_field(&viewer),
        user = esc(&viewer.user),
        job = job_html(&viewer.console, 0),
        history = history_html(&viewer.console, false),
    );
    Ok(layout(Some(&viewer), "SQL console", &body))
}

/// `POST /web/console/run`: starts the statement; answers with its result if it ends quickly, else
/// with a fragment that polls.
pub async fn run(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(form): Form<RunForm>,
) -> Html<String> {
    let console = Arc::clone(&viewer.console);
    {
        let mut view = lock(&console.view);
        if view.job.as_ref().is_some_and(|j| j.outcome.is_none()) {
            drop(view);
            return Html(format!(
                r#"{}<p class="flash bad" role="alert">The previous statement is still running; wait for it.</p>"#,
                job_html(&console, 0)
            ));
        }
        view.next_id += 1;
        let notice_mark = lock(&console.notices).len();
        view.job = Some(Job {
            id: view.next_id,
            resource: form.resource.clone(),
            sql: form.sql.clone(),
            started: Instant::now(),
            notice_mark,
            phase: "starting",
            outcome: None,
        });
    }
    let notified = console.done.notified();
    tokio::spawn(Arc::clone(&console).execute(
        state.api.clone(),
        viewer.user.clone(),
        form.resource,
        form.sql,
    ));
    let _ = tokio::time::timeout(QUICK, notified).await;
    Html(format!(
        "{}{}",
        job_html(&console, 0),
        history_html(&console, true)
    ))
}

/// `GET /web/console/job?page=N`: the running statement's state, or a page of its result.
pub async fn job(viewer: Viewer, Query(q): Query<PageQuery>) -> Html<String> {
    let finished = lock(&viewer.console.view)
        .job
        .as_ref()
        .is_some_and(|j| j.outcome.is_some());
    let history = if finished && q.page == 0 {
        history_html(&viewer.console, true)
    } else {
        String::new()
    };
    Html(format!("{}{history}", job_html(&viewer.console, q.page)))
}
