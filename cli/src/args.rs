//! The command line: global options and one subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

/// A Tandem device in a terminal: local records, sync with a Tandem server, conflicts and the
/// outbox; and `tandem demo`, two devices syncing through an in-process server.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The device's data directory [default: the platform's user data directory + `tandem`]
    #[arg(long, env = "TANDEM_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The Tandem server [default: the one the device signed in to, else http://127.0.0.1:8787]
    #[arg(long, env = "TANDEM_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,

    /// The schema document [default: the sample schema, schemas/sample.json]
    #[arg(long, env = "TANDEM_SCHEMA", global = true, value_name = "FILE")]
    pub schema: Option<PathBuf>,

    /// How sync settles conflicts on this device; kept in the data directory for later
    /// commands [default: the one chosen last, else merge]
    #[arg(long, global = true, value_name = "POLICY", value_parser = crate::policy::names())]
    pub conflict_policy: Option<String>,

    /// Machine-readable output: one JSON value on stdout (`watch`: one per line); errors as
    /// {"error":{"code","message"}} on stderr
    #[arg(long, global = true)]
    pub json: bool,

    /// `--auth-url`, `--sync-url`, `--api-key-file`
    #[command(flatten)]
    pub endpoints: crate::endpoints::EndpointArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates an account on the server and signs this device in. The password comes from
    /// TANDEM_PASSWORD, else --password-stdin, else a prompt
    Signup(Credentials),
    /// Signs this device in; records written while signed out move to the account
    Login(Credentials),
    /// Signs this device out (the account's other devices stay signed in); its data waits for
    /// the next login unless --wipe
    Logout {
        /// Also delete this account's local database (pending changes included) and tokens
        #[arg(long)]
        wipe: bool,
        /// Sign every device of the account out, this one included
        #[arg(long)]
        everywhere: bool,
    },
    /// Who is signed in, and to which server
    Whoami,
    /// Whether this data directory is encrypted at rest; `on`/`off` turn it on or off
    /// (remembered), `rekey` rotates the key. The key is kept in credentials.json beside the
    /// databases, readable by you only: a copied database file alone reveals nothing
    Encryption {
        #[arg(value_enum)]
        action: Option<EncryptionAction>,
    },
    /// Creates or replaces a record with a whole JSON document
    Put {
        collection: String,
        /// The document, e.g. '{"name":"Legs"}'; `-` reads it from standard input, `@FILE` from
        /// a file (for documents over the 128 KiB a command-line argument may be)
        #[arg(value_name = "JSON|-|@FILE")]
        document: String,
        /// The record's id [default: a new UUID v7]
        #[arg(long)]
        id: Option<String>,
        /// The space of a new record of a space collection: its id, or the name of one of your spaces
        #[arg(long, value_name = "SPACE")]
        space: Option<String>,
    },
    /// Changes fields of a record with a JSON merge patch (RFC 7386; null removes a field)
    Patch {
        collection: String,
        id: String,
        /// The fields to change, e.g. '{"notes":"Warm up first"}'; `-` reads them from standard
        /// input, `@FILE` from a file
        #[arg(value_name = "JSON|-|@FILE")]
        patch: String,
    },
    /// Applies a batch of JSON lines, {"op":"put"|"patch"|"delete","collection","id","doc"}
    /// (a put into a space adds "space"), in one transaction: all of them or, if any line is
    /// bad, none
    Write {
        /// The file of JSON lines; `-` reads standard input
        #[arg(value_name = "FILE|-")]
        file: String,
    },
    /// Deletes a record and its children
    Delete { collection: String, id: String },
    /// Prints one record
    Get { collection: String, id: String },
    /// Prints the records of a collection
    List(ListArgs),
    /// Runs one sync (push, then pull) and prints what it did (`--json`: the counts, whether it
    /// pulled everything again, the conflicts it left to you and what became of each pushed change)
    Sync {
        /// Mutations per push request
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
              default_value_t = tandem::default_sync_config().push_batch_size)]
        push_batch: u32,
        /// Changes per pull page (the server caps it)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
              default_value_t = tandem::default_sync_config().pull_page_size)]
        pull_page: u32,
    },
    /// The device's sync status: account, pending changes, conflicts, rejected changes, spaces
    /// and invitations waiting
    Status,
    /// Conflicts waiting for a decision, with both sides of each field
    Conflicts,
    /// Settles a conflict; the result goes up with the next sync
    Resolve {
        collection: String,
        id: String,
        #[arg(value_enum)]
        choice: Choice,
    },
    /// Changes the server refused, with its reasons
    Rejected,
    /// Drops a refused change; the record goes back to the server's state
    Discard {
        /// The change's op id, as `tandem rejected` prints it
        op_id: String,
    },
    /// Drops a record's unsent changes (and refused ones, and its open conflict) and restores
    /// the server's state; a record the server never had disappears. Asks first on a terminal
    Revert {
        collection: String,
        id: String,
        /// Do not ask (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Local changes waiting for the server, in sending order
    Outbox,
    /// Syncs in the background (realtime on) and prints status changes, changed records and
    /// changes of your spaces and invitations as they happen, until interrupted
    Watch,
    /// Attaches a file to a record's attachment field and prints the record; the file is copied
    /// into the device and goes up with the next sync (before the change that names it)
    Attach {
        collection: String,
        id: String,
        /// An attachment field of the collection
        field: String,
        /// The file (never moved or changed)
        file: PathBuf,
        /// Its content type [default: from the file name's extension, else
        /// application/octet-stream]
        #[arg(long, value_name = "TYPE")]
        content_type: Option<String>,
        /// The name kept with it [default: the file's name]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Writes the file of a record's attachment field to --out, downloading it first when it is
    /// not on the device (progress on standard error on a terminal)
    Attachment {
        collection: String,
        id: String,
        /// An attachment field of the collection
        field: String,
        /// Where to write the file (`-`: standard output)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Shared spaces: create, invite, accept, members and roles, leave, delete
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Two devices of one account through a scripted story, on a server started in this process
    Demo {
        /// Keep the server running afterwards (for the sample apps), until interrupted
        #[arg(long)]
        keep: bool,
    },
}

/// `tandem space …`: every call but `list` and `invitations` needs the server.
#[derive(Debug, Subcommand)]
pub enum SpaceCommand {
    /// Creates a space with you as its owner and prints it
    Create {
        /// 1 to 200 characters
        name: String,
    },
    /// Your spaces and your role in each, as of the last sync
    List,
    /// Renames a space (owner)
    Rename {
        /// The space: its id, or the name of one of your spaces
        space: String,
        name: String,
    },
    /// Invites an email to a space (owner); inviting again changes the role
    Invite {
        /// The space: its id, or the name of one of your spaces
        space: String,
        email: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Editor)]
        role: RoleArg,
    },
    /// Invitations waiting for your answer, as of the last sync
    Invitations,
    /// Accepts an invitation; the next sync brings the space's records
    Accept {
        // Invitation ids are random base64url, so one may start with `-`.
        #[arg(allow_hyphen_values = true)]
        invitation: String,
    },
    /// Declines an invitation
    Decline {
        #[arg(allow_hyphen_values = true)]
        invitation: String,
    },
    /// The members of a space and their roles
    Members {
        /// The space: its id, or the name of one of your spaces
        space: String,
    },
    /// Changes a member's role (owner)
    Role {
        /// The space: its id, or the name of one of your spaces
        space: String,
        /// A user id, or the email of a member
        member: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Removes a member from a space (owner)
    Remove {
        /// The space: its id, or the name of one of your spaces
        space: String,
        /// A user id, or the email of a member
        member: String,
    },
    /// Leaves a space; its records leave this device (unsent changes stay as refused ones)
    Leave {
        /// The space: its id, or the name of one of your spaces
        space: String,
    },
    /// Deletes a space for every member (owner). Asks first on a terminal
    Delete {
        /// The space: its id, or the name of one of your spaces
        space: String,
        /// Do not ask (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// A role in a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Owner,
    Editor,
    Viewer,
}

/// How `signup` and `login` get the account.
#[derive(Debug, Args)]
pub struct Credentials {
    pub email: String,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Encrypt this data directory's databases and attachment cache at rest from now on
    /// (remembered; see `tandem encryption`)
    #[arg(long)]
    pub encrypt: bool,
}

/// What `tandem encryption` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncryptionAction {
    /// Encrypt the databases and the attachment cache (converted now, crash-safely)
    On,
    /// Decrypt them (converted now, crash-safely)
    Off,
    /// Rotate the current database's key
    Rekey,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    pub collection: String,
    /// Only records whose FIELD equals the JSON value, e.g. --where 'archived=false'
    #[arg(long = "where", value_name = "FIELD=JSONVALUE", value_parser = parse_filter)]
    pub filters: Vec<(String, Value)>,
    /// Sort by FIELD, ascending, or descending with `:desc`
    #[arg(long, value_name = "FIELD[:desc]", value_parser = parse_order)]
    pub order: Option<(String, bool)>,
    /// At most N records
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Only the records of this space (its id, or the name of one of your spaces)
    #[arg(long, value_name = "SPACE")]
    pub space: Option<String>,
}

/// Which side of a conflict wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Choice {
    KeepMine,
    KeepServer,
}

fn parse_filter(text: &str) -> Result<(String, Value), String> {
    let (field, value) = text
        .split_once('=')
        .ok_or_else(|| "expected FIELD=JSONVALUE".to_string())?;
    if field.is_empty() {
        return Err("the field name is empty".into());
    }
    let value = serde_json::from_str(value).map_err(|e| {
        format!("the value is not JSON ({e}); quote strings, e.g. {field}='\"text\"'")
    })?;
    Ok((field.to_string(), value))
}

fn parse_order(text: &str) -> Result<(String, bool), String> {
    let (field, descending) = match text.rsplit_once(':') {
        Some((field, "desc")) => (field, true),
        Some((field, "asc")) => (field, false),
        Some((_, other)) => return Err(format!("unknown direction `{other}`; use :asc or :desc")),
        None => (text, false),
    };
    if field.is_empty() {
        return Err("the field name is empty".into());
    }
    Ok((field.to_string(), descending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_id_may_start_with_a_hyphen() {
        for command in ["accept", "decline"] {
            let cli = Cli::try_parse_from(["tandem", "space", command, "-Ral0aftPYYAm0ZZ0EwQBA"])
                .unwrap_or_else(|e| panic!("{command}: {e}"));
            let Command::Space(
                SpaceCommand::Accept { invitation } | SpaceCommand::Decline { invitation },
            ) = cli.command
            else {
                panic!("{command} parsed as another command");
            };
            assert_eq!(invitation, "-Ral0aftPYYAm0ZZ0EwQBA");
        }
    }

    #[test]
    fn filters_take_a_json_value() {
        assert_eq!(
            parse_filter("planId=\"p1\"").unwrap(),
            ("planId".into(), Value::from("p1"))
        );
        assert_eq!(
            parse_filter("dayIndex=2").unwrap(),
            ("dayIndex".into(), Value::from(2))
        );
        assert!(parse_filter("planId=p1").unwrap_err().contains("not JSON"));
        assert!(parse_filter("nothing").is_err());
        assert!(parse_filter("=1").is_err());
    }

    #[test]
    fn order_takes_an_optional_direction() {
        assert_eq!(parse_order("name").unwrap(), ("name".into(), false));
        assert_eq!(parse_order("name:desc").unwrap(), ("name".into(), true));
        assert_eq!(parse_order("name:asc").unwrap(), ("name".into(), false));
        assert!(parse_order("name:down").is_err());
        assert!(parse_order(":desc").is_err());
    }

    #[test]
    fn attach_and_attachment_take_their_options() {
        let cli = Cli::try_parse_from([
            "tandem",
            "attach",
            "plan_days",
            "d1",
            "photo",
            "climb.jpg",
            "--content-type",
            "image/jpeg",
            "--name",
            "Climb",
        ])
        .unwrap();
        match cli.command {
            Command::Attach {
                collection,
                id,
                field,
                file,
                content_type,
                name,
            } => {
                assert_eq!(
                    (collection.as_str(), id.as_str(), field.as_str()),
                    ("plan_days", "d1", "photo")
                );
                assert_eq!(file, PathBuf::from("climb.jpg"));
                assert_eq!(content_type.as_deref(), Some("image/jpeg"));
                assert_eq!(name.as_deref(), Some("Climb"));
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from([
            "tandem",
            "attachment",
            "plan_days",
            "d1",
            "photo",
            "--out",
            "x.jpg",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::Attachment { ref out, .. } if out == &PathBuf::from("x.jpg"))
        );
        assert!(
            Cli::try_parse_from(["tandem", "attachment", "plan_days", "d1", "photo"]).is_err(),
            "--out is required"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
