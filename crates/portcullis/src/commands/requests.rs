//! `request`, `reserve`, `requests`, `approve`, `reject` and `inbox`: the approval flows from the command
//! line. "Now" is the store's clock (which `testing.clock_offset_file` moves), as in the gateway.
//! The acting user (`--as`) proves who they are with their gateway password, so "a requester never
//! endorses their own request" holds for people, not just for names typed on a command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use portcullis_store::{Clock, EndorsementDecision, Request, RequestFilter, RequestStatus, Store};
use portcullis_workflows::{self as workflows, AccessAsk, ReservationAsk};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::PasswordSource;
use crate::commands::audit::one_line;
use crate::commands::notifications;
use crate::password;
use crate::table;

/// The gateway user a command acts as.
#[derive(Debug, Args)]
pub struct ActingUser {
    /// The gateway user acting; they authenticate with their gateway password.
    #[arg(long = "as", value_name = "USER")]
    pub user: String,
    /// Where their password comes from.
    #[command(flatten)]
    pub password: PasswordSource,
}

/// `request` subcommands.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Request access: an on-demand bundle (`--bundle`), or objects and privileges on a resource.
    Access {
        /// An on-demand bundle the policy defines.
        #[arg(long, conflicts_with_all = ["objects", "privileges"])]
        bundle: Option<String>,
        /// The resource (without a bundle).
        #[arg(long)]
        resource: Option<String>,
        /// Object patterns, comma-separated (`hr.*`, `public.orders`).
        #[arg(long, value_delimiter = ',')]
        objects: Vec<String>,
        /// Privileges, comma-separated (`select`, `update`, `all`).
        #[arg(long, value_delimiter = ',')]
        privileges: Vec<String>,
        /// For how long, e.g. 30m, 2h, 1d (at most the entry's max_duration).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why you need it; approvers decide on it.
        #[arg(long)]
        reason: String,
        /// Who asks.
        #[command(flatten)]
        acting: ActingUser,
    },
}

/// `reserve` options.
#[derive(Debug, Args)]
pub struct ReserveArgs {
    /// The resource to connect to.
    #[arg(long)]
    pub resource: String,
    /// When the window opens: RFC 3339 (2026-12-03T09:00:00Z), `now`, or `+30m` from now.
    #[arg(long, default_value = "now")]
    pub from: String,
    /// When it closes (same forms); sessions in it are ended then.
    #[arg(long)]
    pub until: String,
    /// Why you need it; approvers decide on it.
    #[arg(long)]
    pub reason: String,
    /// Print the request as JSON.
    #[arg(long)]
    pub json: bool,
    /// Who reserves.
    #[command(flatten)]
    pub acting: ActingUser,
}

/// `requests` options.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Only pending requests.
    #[arg(long)]
    pub pending: bool,
    /// Only requests of the acting user (needs --as).
    #[arg(long, requires = "user")]
    pub mine: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The gateway user acting (with --mine); they authenticate with their gateway password.
    #[arg(long = "as", value_name = "USER")]
    pub user: Option<String>,
    /// Where their password comes from.
    #[command(flatten)]
    pub password: PasswordSource,
}

/// `approve` and `reject` options.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The request's number (from the refusal message, `inbox` or `requests`).
    pub id: i64,
    /// A comment recorded with the decision.
    #[arg(long)]
    pub comment: Option<String>,
    /// The approver.
    #[command(flatten)]
    pub acting: ActingUser,
}

/// `inbox` options.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show your notifications (unread first) instead of the requests you may decide.
    #[arg(long)]
    pub notifications: bool,
    /// With --notifications: read ones too, not only unread ones.
    #[arg(long, requires = "notifications")]
    pub all: bool,
    /// Mark notifications read: ids (`3,4`) or `all`.
    #[arg(long, value_name = "IDS", conflicts_with_all = ["notifications", "json"])]
    pub mark_read: Option<String>,
    /// The approver.
    #[command(flatten)]
    pub acting: ActingUser,
}

/// Checks the acting user's password and returns their roles.
fn authenticate(store: &Store, user: &str, source: &PasswordSource) -> Result<Vec<String>> {
    let password = password::read(source)?;
    if !store.verify_password(user, &password)? {
        bail!("cannot act as {user}: wrong password, or no such enabled user");
    }
    Ok(store
        .user_login(user)?
        .map(|login| login.roles)
        .unwrap_or_default())
}

/// Runs a `request` subcommand.
pub fn request(store: &Store, clock: &Clock, command: RequestCommand) -> Result<()> {
    let RequestCommand::Access {
        bundle,
        resource,
        objects,
        privileges,
        duration,
        reason,
        acting,
    } = command;
    authenticate(store, &acting.user, &acting.password)?;
    let duration = portcullis_policy::parse_duration(&duration)
        .map_err(anyhow::Error::msg)
        .context("--for")?;
    let policy = workflows::load_policy(store)?;
    let ask = AccessAsk {
        bundle,
        resource,
        objects,
        privileges,
        duration,
        reason,
    };
    let request = workflows::request_access(store, &policy, &acting.user, &ask, clock.now())?;
    store.shutdown()?;
    println!(
        "request {id} filed (workflow {workflow}); an approver runs `portcullis approve {id}`",
        id = request.id,
        workflow = request.workflow
    );
    Ok(())
}

/// Runs `reserve`.
pub fn reserve(store: &Store, clock: &Clock, args: &ReserveArgs) -> Result<()> {
    let roles = authenticate(store, &args.acting.user, &args.acting.password)?;
    let now = clock.now();
    let ask = ReservationAsk {
        resource: args.resource.clone(),
        from: workflows::parse_instant(&args.from, now)
            .map_err(anyhow::Error::msg)
            .context("--from")?,
        until: workflows::parse_instant(&args.until, now)
            .map_err(anyhow::Error::msg)
            .context("--until")?,
        reason: args.reason.clone(),
    };
    let policy = workflows::load_policy(store)?;
    let request = workflows::reserve(store, &policy, &args.acting.user, &roles, &ask, now)?;
    store.shutdown()?;
    if args.json {
        println!("{}", serde_json::to_string(&request)?);
    } else {
        println!(
            "reservation {id} filed (workflow {workflow}) for {resource} from {from} until {until}; \
             an approver runs `portcullis approve {id}`",
            id = request.id,
            workflow = request.workflow,
            resource = request.resource,
            from = format_at(ask.from),
            until = format_at(ask.until),
        );
    }
    Ok(())
}

fn format_at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Runs `requests`.
pub fn list(store: &Store, clock: &Clock, args: &RequestsArgs) -> Result<()> {
    let requester = match (&args.user, args.mine) {
        (Some(user), true) => {
            authenticate(store, user, &args.password)?;
            Some(user.clone())
        }
        _ => None,
    };
    // Without a policy nothing escalates or is rejected on a timeout; pending requests still expire.
    let policy = workflows::load_policy(store).unwrap_or_default();
    workflows::expire_due(store, &policy.workflows, clock.now())?;
    let requests = store.list_requests(&RequestFilter {
        status: args.pending.then_some(RequestStatus::Pending),
        requester,
    })?;
    store.shutdown()?;
    print_requests(&requests, args.json)
}

/// Runs `approve` or `reject`.
pub fn decide(
    store: &Store,
    clock: &Clock,
    args: &DecideArgs,
    decision: EndorsementDecision,
) -> Result<()> {
    let roles = authenticate(store, &args.acting.user, &args.acting.password)?;
    let policy = workflows::load_policy(store)?;
    let result = workflows::decide(
        store,
        &policy,
        &args.acting.user,
        &roles,
        args.id,
        decision,
        args.comment.clone(),
        clock.now(),
    );
    store.shutdown()?;
    let request = result?;
    let approvals = request
        .endorsements
        .iter()
        .filter(|e| e.decision == EndorsementDecision::Approve)
        .count();
    match request.status {
        RequestStatus::Approved => println!(
            "request {} approved; valid until {}",
            request.id,
            request.valid_until.map(format_millis).unwrap_or_default()
        ),
        RequestStatus::Rejected => println!("request {} rejected", request.id),
        _ => {
            let required = policy
                .workflow(&request.workflow)
                .map(|w| w.required)
                .unwrap_or(1);
            println!(
                "request {}: {approvals} of {required} approvals; it waits for more",
                request.id
            )
        }
    }
    Ok(())
}

/// Runs `inbox`.
pub fn inbox(store: &Store, clock: &Clock, args: &InboxArgs) -> Result<()> {
    let roles = authenticate(store, &args.acting.user, &args.acting.password)?;
    let user = &args.acting.user;
    if let Some(ids) = &args.mark_read {
        return notifications::mark_read(store, user, ids);
    }
    if args.notifications {
        return notifications::show(store, user, !args.all, args.json);
    }
    let policy = workflows::load_policy(store)?;
    let requests = workflows::inbox(store, &policy, &args.acting.user, &roles, clock.now())?;
    store.shutdown()?;
    print_requests(&requests, args.json)?;
    if !args.json {
        notifications::show_unread_summary(store, user)?;
    }
    Ok(())
}

fn print_requests(requests: &[Request], json: bool) -> Result<()> {
    if json {
        for request in requests {
            println!("{}", serde_json::to_string(request)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.kind.to_string(),
                r.status.to_string(),
                r.requester.clone(),
                r.resource.clone(),
                r.workflow.clone(),
                format_millis(r.created_at),
                r.endorsements
                    .iter()
                    .map(|e| format!("{} {}", e.approver, e.decision))
                    .collect::<Vec<_>>()
                    .join(", "),
                one_line(&what(r), 70),
            ]
        })
        .collect();
    table::print(
        &[
            "ID",
            "KIND",
            "STATUS",
            "REQUESTER",
            "RESOURCE",
            "WORKFLOW",
            "CREATED",
            "ENDORSEMENTS",
            "WHAT",
        ],
        &rows,
    );
    Ok(())
}

/// What a request asks for, for the approver.
fn what(r: &Request) -> String {
    if let Some(q) = &r.query {
        return format!("{} [{}] ({})", q.text, q.summary, r.reason);
    }
    if let Some(w) = &r.window {
        return format!(
            "{} to {}: {}",
            format_millis(w.from),
            format_millis(w.until),
            r.reason
        );
    }
    match &r.access {
        Some(a) => {
            let scope = match &a.bundle {
                Some(bundle) => format!("bundle {bundle}"),
                None => format!("{} on {}", a.privileges.join(","), a.objects.join(",")),
            };
            format!("{scope} for {}s: {}", a.duration_ms / 1000, r.reason)
        }
        None => r.reason.clone(),
    }
}

pub(crate) fn format_millis(ms: i64) -> String {
    crate::commands::audit::format_micros(ms.saturating_mul(1000))
}
