//! `tandem space …`: shared spaces, their members and roles, and invitations. Each command is one
//! call of the exported API (`Tandem::create_space`, `invite`, …); `list` and `invitations` read
//! what the last sync left on this device, the others need the server.
//!
//! `--json` prints the API's values in camelCase: a space `{"id","name","role","memberCount",
//! "createdAt"}`, a member `{"userId","email","role","joinedAt"}`, an invitation `{"id",
//! "spaceId","spaceName","role","invitedBy","createdAt","expiresAt"}`; a refused call fails with
//! the server's code (`not_found`, `forbidden`, `last_owner`, `already_member`, `limit_reached`,
//! `invalid_name`).

use serde_json::{json, Value};
use tandem::{Invitation, Member, SentInvitation, Space, SpaceRole, Tandem};
use tokio::runtime::Runtime;

use crate::args::{RoleArg, SpaceCommand};
use crate::commands::Reply;
use crate::error::CliError;
use crate::render::timestamp;

pub fn run(rt: &Runtime, tandem: &Tandem, command: SpaceCommand) -> Result<Reply, CliError> {
    match command {
        SpaceCommand::Create { name } => {
            let space = rt.block_on(tandem.create_space(name))?;
            Ok(Reply::new(
                space_json(&space),
                format!("created {}", space_line(&space)),
            ))
        }
        SpaceCommand::List => Ok(list(&tandem.spaces()?, space_json, space_line)),
        SpaceCommand::Rename { space, name } => {
            let space = space_id(tandem, &space)?;
            let space = rt.block_on(tandem.rename_space(space, name))?;
            Ok(Reply::new(
                space_json(&space),
                format!("renamed {}", space_line(&space)),
            ))
        }
        SpaceCommand::Invite { space, email, role } => {
            let space = space_id(tandem, &space)?;
            let sent = rt.block_on(tandem.invite(space.clone(), email, role.into()))?;
            let mut json = sent_json(&sent);
            json["spaceId"] = json!(space);
            Ok(Reply::new(
                json,
                format!(
                    "invited {} to {space} as {} (invitation {}, expires {})",
                    sent.email,
                    role_name(sent.role),
                    sent.id,
                    timestamp(sent.expires_at)
                ),
            ))
        }
        SpaceCommand::Invitations => Ok(list(
            &tandem.invitations()?,
            invitation_json,
            invitation_line,
        )),
        SpaceCommand::Accept { invitation } => {
            let space = rt.block_on(tandem.accept(invitation))?;
            Ok(Reply::new(
                space_json(&space),
                format!(
                    "joined {}; `tandem sync` brings its records",
                    space_line(&space)
                ),
            ))
        }
        SpaceCommand::Decline { invitation } => {
            rt.block_on(tandem.decline(invitation.clone()))?;
            Ok(Reply::new(
                json!({ "declined": invitation }),
                format!("declined {invitation}"),
            ))
        }
        SpaceCommand::Members { space } => Ok(list(
            &rt.block_on(tandem.members(space_id(tandem, &space)?))?,
            member_json,
            member_line,
        )),
        SpaceCommand::Role {
            space,
            member,
            role,
        } => {
            let space = space_id(tandem, &space)?;
            let user_id = member_id(rt, tandem, &space, &member)?;
            let member = rt.block_on(tandem.set_role(space, user_id, role.into()))?;
            Ok(Reply::new(
                member_json(&member),
                format!("{} is now {}", member.email, role_name(member.role)),
            ))
        }
        SpaceCommand::Remove { space, member } => {
            let space = space_id(tandem, &space)?;
            let user_id = member_id(rt, tandem, &space, &member)?;
            rt.block_on(tandem.remove_member(space.clone(), user_id.clone()))?;
            Ok(Reply::new(
                json!({ "removed": { "spaceId": space, "userId": user_id } }),
                format!("removed {member} from {space}"),
            ))
        }
        SpaceCommand::Leave { space } => {
            let space = space_id(tandem, &space)?;
            rt.block_on(tandem.leave(space.clone()))?;
            Ok(Reply::new(
                json!({ "left": space }),
                format!("left {space}{}", kept_note(tandem)?),
            ))
        }
        SpaceCommand::Delete { space, yes } => {
            let space = space_id(tandem, &space)?;
            if !yes {
                confirm(tandem, &space)?;
            }
            rt.block_on(tandem.delete_space(space.clone()))?;
            Ok(Reply::new(
                json!({ "deleted": space }),
                format!("deleted {space} for every member{}", kept_note(tandem)?),
            ))
        }
    }
}

/// The id of the space `given` names: one of your spaces' ids, or else the name of exactly one of
/// them (as this device last saw them); anything else goes to the server as an id, which answers
/// `not_found` for a space you are not a member of.
pub fn space_id(tandem: &Tandem, given: &str) -> Result<String, CliError> {
    let spaces = tandem.spaces()?;
    if spaces.iter().any(|s| s.id == given) {
        return Ok(given.to_string());
    }
    let named: Vec<&Space> = spaces.iter().filter(|s| s.name == given).collect();
    match named.as_slice() {
        [] => Ok(given.to_string()),
        [one] => Ok(one.id.clone()),
        many => Err(CliError::usage(format!(
            "{} of your spaces are named {given:?}: name one by its id (tandem space list)",
            many.len()
        ))),
    }
}

/// One line per item, or `(none)`; a JSON array.
fn list<T>(items: &[T], json: impl Fn(&T) -> Value, line: impl Fn(&T) -> String) -> Reply {
    let text = if items.is_empty() {
        "(none)".to_string()
    } else {
        items.iter().map(line).collect::<Vec<_>>().join("\n")
    };
    Reply::new(Value::Array(items.iter().map(json).collect()), text)
}

/// The user id of `member`: itself, or the id of the member whose email it is.
fn member_id(rt: &Runtime, tandem: &Tandem, space: &str, member: &str) -> Result<String, CliError> {
    if !member.contains('@') {
        return Ok(member.to_string());
    }
    let members = rt.block_on(tandem.members(space.to_string()))?;
    members
        .into_iter()
        .find(|m| m.email.eq_ignore_ascii_case(member.trim()))
        .map(|m| m.user_id)
        .ok_or_else(|| CliError::new("not_found", format!("{member} is not a member of {space}")))
}

/// A note on the refused changes a removal left, if any.
fn kept_note(tandem: &Tandem) -> Result<String, CliError> {
    let kept = tandem
        .rejected()?
        .iter()
        .filter(|r| r.reason_code == "forbidden")
        .count();
    Ok(if kept == 0 {
        String::new()
    } else {
        format!("; {kept} unsent change(s) stay as refused ones: tandem rejected")
    })
}

fn confirm(tandem: &Tandem, space: &str) -> Result<(), CliError> {
    let name = tandem
        .spaces()?
        .into_iter()
        .find(|s| s.id == space)
        .map_or_else(
            || space.to_string(),
            |s| format!("\"{}\" ({space})", s.name),
        );
    crate::input::confirm(
        &format!("delete removes {space} and its records for every member"),
        &format!("Delete the space {name} and its records for every member?"),
        "nothing deleted",
    )
}

impl From<RoleArg> for SpaceRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Owner => Self::Owner,
            RoleArg::Editor => Self::Editor,
            RoleArg::Viewer => Self::Viewer,
        }
    }
}

pub fn role_name(role: SpaceRole) -> &'static str {
    match role {
        SpaceRole::Owner => "owner",
        SpaceRole::Editor => "editor",
        SpaceRole::Viewer => "viewer",
    }
}

pub fn space_json(space: &Space) -> Value {
    json!({
        "id": space.id,
        "name": space.name,
        "role": role_name(space.role),
        "memberCount": space.member_count,
        "createdAt": timestamp(space.created_at),
    })
}

/// `0195c3…  "Family"  owner  3 members`
pub fn space_line(space: &Space) -> String {
    format!(
        "{}  {}  {}  {} member{}",
        space.id,
        json!(space.name),
        role_name(space.role),
        space.member_count,
        if space.member_count == 1 { "" } else { "s" }
    )
}

pub fn member_json(member: &Member) -> Value {
    json!({
        "userId": member.user_id,
        "email": member.email,
        "role": role_name(member.role),
        "joinedAt": timestamp(member.joined_at),
    })
}

fn member_line(member: &Member) -> String {
    format!(
        "{}  {}  {}",
        member.user_id,
        member.email,
        role_name(member.role)
    )
}

pub fn invitation_json(invitation: &Invitation) -> Value {
    json!({
        "id": invitation.id,
        "spaceId": invitation.space_id,
        "spaceName": invitation.space_name,
        "role": role_name(invitation.role),
        "invitedBy": invitation.invited_by,
        "createdAt": timestamp(invitation.created_at),
        "expiresAt": timestamp(invitation.expires_at),
    })
}

/// `iN4…  coach@example.com invited you to "Legs" (0195aa…) as viewer`
pub fn invitation_line(invitation: &Invitation) -> String {
    format!(
        "{}  {} invited you to {} ({}) as {}",
        invitation.id,
        invitation.invited_by,
        json!(invitation.space_name),
        invitation.space_id,
        role_name(invitation.role)
    )
}

fn sent_json(sent: &SentInvitation) -> Value {
    json!({
        "id": sent.id,
        "email": sent.email,
        "role": role_name(sent.role),
        "createdAt": timestamp(sent.created_at),
        "expiresAt": timestamp(sent.expires_at),
    })
}
