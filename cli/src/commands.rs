//! The one-shot commands: each opens the device, does one thing and returns what to print.

use serde_json::{json, Value};
use tandem::{AuthState, Encryption, Filter, FilterOp, OrderBy, Query, Resolution, TandemError};
use tokio::runtime::Runtime;

use crate::args::{Choice, Command, Credentials, EncryptionAction, Global, ListArgs};
use crate::device::{encryption_name, one_shot_sync, Device};
use crate::error::CliError;
use crate::{batch, input, password, render};

/// What a command prints: `json` with `--json`, else `text` (nothing when empty).
pub struct Reply {
    pub json: Value,
    pub text: String,
}

impl Reply {
    pub(crate) fn new(json: Value, text: impl Into<String>) -> Self {
        Self {
            json,
            text: text.into(),
        }
    }

    /// One line per item, or `(none)`.
    fn list<T>(items: &[T], json: impl Fn(&T) -> Value, line: impl Fn(&T) -> String) -> Self {
        let text = if items.is_empty() {
            "(none)".to_string()
        } else {
            items.iter().map(line).collect::<Vec<_>>().join("\n")
        };
        Self::new(Value::Array(items.iter().map(json).collect()), text)
    }
}

/// The encryption setting a command asks for (`--encrypt`, `encryption on|off`), applied as
/// the device opens: the files are converted then.
fn encryption_setting(command: &Command) -> Option<Encryption> {
    match command {
        Command::Signup(c) | Command::Login(c) if c.encrypt => Some(Encryption::On),
        Command::Encryption {
            action: Some(EncryptionAction::On),
        } => Some(Encryption::On),
        Command::Encryption {
            action: Some(EncryptionAction::Off),
        } => Some(Encryption::Off),
        _ => None,
    }
}

/// `tandem encryption [on|off|rekey]`: the setting was applied as the device opened; this
/// reports what the files are now (and rotates the key for `rekey`).
fn encryption(
    rt: &Runtime,
    device: &Device,
    action: Option<EncryptionAction>,
) -> Result<Reply, CliError> {
    let tandem = &device.tandem;
    if action == Some(EncryptionAction::Rekey) {
        rt.block_on(tandem.rekey())?;
    }
    let files = encryption_name(tandem.encryption_status()?);
    let text = match action {
        Some(EncryptionAction::Rekey) => "the database key was rotated".to_string(),
        _ => format!("encryption: {files}"),
    };
    Ok(Reply::new(
        json!({
            "encryption": files,
            "rekeyed": action == Some(EncryptionAction::Rekey),
        }),
        text,
    ))
}

/// Runs a one-shot command (everything but `watch` and `demo`).
pub fn run(rt: &Runtime, global: &Global, command: Command) -> Result<Reply, CliError> {
    let mut sync = one_shot_sync();
    if let Command::Sync {
        push_batch,
        pull_page,
    } = &command
    {
        sync.push_batch_size = *push_batch;
        sync.pull_page_size = *pull_page;
    }
    let device = Device::open(global, sync, encryption_setting(&command))?;
    let tandem = &device.tandem;
    match command {
        Command::Signup(credentials) => sign_in(rt, &device, credentials, true),
        Command::Login(credentials) => sign_in(rt, &device, credentials, false),
        Command::Logout { wipe, everywhere } => logout(rt, &device, wipe, everywhere),
        Command::Whoami => whoami(&device),
        Command::Encryption { action } => encryption(rt, &device, action),
        Command::Put {
            collection,
            document,
            id,
            space: None,
        } => record(tandem.put(collection, id, input::document(&document)?)?),
        Command::Put {
            collection,
            document,
            id,
            space: Some(space),
        } => record(tandem.put_in_space(
            crate::spaces::space_id(tandem, &space)?,
            collection,
            id,
            input::document(&document)?,
        )?),
        Command::Patch {
            collection,
            id,
            patch,
        } => record(tandem.patch(collection, id, input::document(&patch)?)?),
        Command::Write { file } => {
            let text = input::file_text(&file)?;
            batch::run(tandem, &device.schema_text, &text)
        }
        Command::Delete { collection, id } => {
            tandem.delete(collection.clone(), id.clone())?;
            Ok(Reply::new(
                json!({ "deleted": { "collection": collection, "id": id } }),
                format!("deleted {collection}/{id} and its children"),
            ))
        }
        Command::Get { collection, id } => match tandem.get(collection.clone(), id.clone())? {
            Some(found) => record(found),
            None => Err(TandemError::NotFound { collection, id }.into()),
        },
        Command::List(args) => list(&device, args),
        Command::Sync { .. } => {
            let report = rt.block_on(tandem.sync_now())?;
            let mut text = render::report_line(&report);
            let status = tandem.sync_status()?;
            if status.conflicts > 0 {
                text += &format!(
                    "\n{} conflicts wait for a decision: tandem conflicts",
                    status.conflicts
                );
            }
            if status.rejected > 0 {
                text += &format!(
                    "\n{} changes were refused: tandem rejected",
                    status.rejected
                );
            }
            Ok(Reply::new(render::report_json(&report), text))
        }
        Command::Status => status(&device),
        Command::Conflicts => Ok(Reply::list(
            &tandem.conflicts()?,
            render::conflict_json,
            render::conflict_lines,
        )),
        Command::Resolve {
            collection,
            id,
            choice,
        } => {
            let resolution = match choice {
                Choice::KeepMine => Resolution::KeepMine,
                Choice::KeepServer => Resolution::KeepServer,
            };
            match tandem.resolve(collection.clone(), id.clone(), resolution)? {
                Some(resolved) => Ok(Reply::new(
                    json!({ "record": render::record_json(&resolved) }),
                    render::record_line(&resolved),
                )),
                None => Ok(Reply::new(
                    json!({ "record": null }),
                    format!("{collection}/{id} is deleted"),
                )),
            }
        }
        Command::Rejected => Ok(Reply::list(
            &tandem.rejected()?,
            render::rejected_json,
            render::rejected_line,
        )),
        Command::Discard { op_id } => {
            tandem.discard_rejected(op_id.clone())?;
            Ok(Reply::new(
                json!({ "discarded": op_id }),
                format!("discarded {op_id}"),
            ))
        }
        Command::Revert {
            collection,
            id,
            yes,
        } => crate::revert::run(tandem, collection, id, yes),
        Command::Outbox => Ok(Reply::list(
            &tandem.outbox()?,
            render::outbox_json,
            render::outbox_line,
        )),
        Command::Space(command) => crate::spaces::run(rt, tandem, command),
        Command::Attach {
            collection,
            id,
            field,
            file,
            content_type,
            name,
        } => crate::attachments::attach(
            rt,
            tandem,
            crate::attachments::Target {
                collection,
                id,
                field,
            },
            &file,
            content_type,
            name,
        ),
        Command::Attachment {
            collection,
            id,
            field,
            out,
        } => crate::attachments::attachment(
            rt,
            tandem,
            crate::attachments::Target {
                collection,
                id,
                field,
            },
            &out,
        ),
        Command::Watch | Command::Demo { .. } => Err(CliError::new(
            "internal",
            "watch and demo are not one-shot commands",
        )),
    }
}

fn sign_in(
    rt: &Runtime,
    device: &Device,
    credentials: Credentials,
    sign_up: bool,
) -> Result<Reply, CliError> {
    let password = password::read(&credentials.email, credentials.password_stdin, sign_up)?;
    let user = if sign_up {
        rt.block_on(device.tandem.sign_up(credentials.email, password))?
    } else {
        rt.block_on(device.tandem.sign_in(credentials.email, password))?
    };
    device.remember_server()?;
    crate::endpoints::remember(&device.data_dir)?;
    let verb = if sign_up { "signed up" } else { "logged in" };
    Ok(Reply::new(
        json!({ "user": render::user_json(&user), "server": device.server }),
        format!(
            "{verb} as {} ({}) at {}",
            user.email, user.id, device.server
        ),
    ))
}

/// `tandem logout [--wipe] [--everywhere]`: this device only (the account's other devices stay
/// signed in), or with `--everywhere` every device of the account.
fn logout(rt: &Runtime, device: &Device, wipe: bool, everywhere: bool) -> Result<Reply, CliError> {
    let tandem = &device.tandem;
    let email = tandem.current_user()?.map(|u| u.email);
    if everywhere {
        rt.block_on(tandem.sign_out_everywhere(wipe))?;
    } else {
        rt.block_on(tandem.sign_out(wipe))?;
    }
    let scope = if everywhere { " on every device" } else { "" };
    let text = match (email, wipe) {
        (Some(email), true) => format!("signed out {email}{scope}; its local data is wiped"),
        (Some(email), false) => {
            format!("signed out {email}{scope}; its data waits on this device for the next login")
        }
        (None, _) => "not signed in".to_string(),
    };
    Ok(Reply::new(
        if everywhere {
            json!({ "signedOut": true, "wiped": wipe, "everywhere": true })
        } else {
            json!({ "signedOut": true, "wiped": wipe })
        },
        text,
    ))
}

fn whoami(device: &Device) -> Result<Reply, CliError> {
    let (user, expired) = match device.tandem.auth_state()? {
        AuthState::SignedIn { user } => (Some(user), false),
        AuthState::SessionExpired { user } => (Some(user), true),
        AuthState::SignedOut => (None, false),
    };
    let text = match &user {
        Some(user) if expired => format!(
            "{} ({}) at {}; the session expired: tandem login {}",
            user.email, user.id, device.server, user.email
        ),
        Some(user) => format!("{} ({}) at {}", user.email, user.id, device.server),
        None => "not signed in (records written now stay on this device until a login)".into(),
    };
    Ok(Reply::new(
        json!({
            "user": user.as_ref().map(render::user_json),
            "sessionExpired": expired,
            "server": device.server,
            "dataDir": device.data_dir,
        }),
        text,
    ))
}

fn record(record: tandem::Record) -> Result<Reply, CliError> {
    Ok(Reply::new(
        render::record_json(&record),
        render::record_line(&record),
    ))
}

fn list(device: &Device, args: ListArgs) -> Result<Reply, CliError> {
    let query = Query {
        filters: args
            .filters
            .into_iter()
            .map(|(field, value)| Filter {
                field,
                op: FilterOp::Eq,
                value_json: value.to_string(),
            })
            .collect(),
        order_by: args
            .order
            .into_iter()
            .map(|(field, descending)| OrderBy { field, descending })
            .collect(),
        limit: args.limit,
        offset: None,
        space_id: args
            .space
            .map(|space| crate::spaces::space_id(&device.tandem, &space))
            .transpose()?,
    };
    let records = device.tandem.query(args.collection, query)?;
    Ok(Reply::list(
        &records,
        render::record_json,
        render::record_line,
    ))
}

fn status(device: &Device) -> Result<Reply, CliError> {
    let tandem = &device.tandem;
    let user = tandem.current_user()?;
    let status = tandem.sync_status()?;
    let mut json = render::status_json(&status);
    json["user"] = user.as_ref().map_or(Value::Null, render::user_json);
    json["server"] = json!(device.server);
    json["conflictPolicy"] = json!(device.conflict_policy);
    let encryption = encryption_name(tandem.encryption_status()?);
    json["encryption"] = json!(encryption);
    let spaces = tandem.spaces()?.len();
    let invitations = tandem.invitations()?.len();
    json["spaces"] = json!(spaces);
    json["invitations"] = json!(invitations);
    let failed = crate::attachments::failed_uploads(tandem)?;
    json["attachments"] = crate::attachments::status_json(&status, failed);
    let account = user.map_or_else(
        || "not signed in".to_string(),
        |u| format!("{} at {}", u.email, device.server),
    );
    let mut text = format!(
        "{account}\n{}\nconflict policy: {}\nencryption: {encryption}",
        render::status_line(&status),
        device.conflict_policy
    );
    if status.attachments_pending > 0 || failed > 0 {
        text += &format!(
            "\nattachments: {} to upload ({}), {failed} refused",
            status.attachments_pending,
            crate::attachments::bytes(status.attachment_bytes_pending)
        );
        if failed > 0 {
            text += " (tandem rejected)";
        }
    }
    if spaces > 0 || invitations > 0 {
        text += &format!("\nspaces: {spaces}, invitations waiting: {invitations}");
        if invitations > 0 {
            text += " (tandem space invitations)";
        }
    }
    Ok(Reply::new(json, text))
}
