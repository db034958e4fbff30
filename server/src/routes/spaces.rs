//! The space endpoints of docs/protocol.md ("Spaces and public collections"), all under
//! `/sync/v1` with a user's bearer token (so the kill switch applies). Each is one storage call
//! that locks the space's stream row, reads the caller's membership and acts in the same
//! transaction. "Not a member" answers exactly as "no such space" (`404 not_found`), checked
//! before anything about the target member or invitation. Refusals log at `info` with the user
//! id, the space id and the code, never an email, a space name or a document.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tandem_protocol::{
    is_valid_id, AccountOut, CreateSpaceRequest, InvitationOut, InviteRequest, MemberOut,
    MembersOut, RenameSpaceRequest, SentInvitationOut, SentInvitationsOut, SetRoleRequest,
    SpaceOut, MAX_ID_LEN,
};

use super::{AuthUser, JsonBody, SharedState};
use crate::auth::{is_plausible_email, normalize_email};
use crate::clock::rfc3339_from_ms;
use crate::error::ApiError;
use crate::spaces::check_space_name;
use crate::storage::{Account, InvitationRow, MemberRow, SpaceOutcome, SpaceRow};

/// `POST /sync/v1/spaces`: `201` with the new space, `200` with the same space for a
/// `requestId` seen before.
pub async fn create(
    State(state): State<SharedState>,
    user: AuthUser,
    JsonBody(body): JsonBody<CreateSpaceRequest>,
) -> Result<Response, ApiError> {
    if !is_valid_id(&body.request_id) {
        return Err(ApiError::invalid_request(id_rule("requestId")));
    }
    let name = check_space_name(&body.name).map_err(ApiError::validation_failed)?;
    // An access token outlives a deleted account (`DELETE /admin/v1/users/{id}`): no space for
    // an account that is gone. (Every other space call needs a membership, which went with it.)
    if state.storage.user_by_id(&user.user_id).await?.is_none() {
        return Err(ApiError::account_gone());
    }
    let outcome = state
        .storage
        .create_space(
            &user.user_id,
            &name,
            &body.request_id,
            state.clock.now_ms(),
            state.space_limits,
        )
        .await?;
    let (space, created) = done(outcome, &user, None, "create space")?;
    if created {
        poke_accounts(&state, std::slice::from_ref(&user.user_id));
        tracing::info!(user_id = %user.user_id, space_id = %space.id, "space created");
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(space_out(space))).into_response())
}

/// `GET /sync/v1/account`: the caller's spaces and pending invitations, with `accountSeq`.
pub async fn account(
    State(state): State<SharedState>,
    user: AuthUser,
) -> Result<Json<AccountOut>, ApiError> {
    let account = state
        .storage
        .account(&user.user_id, state.clock.now_ms())
        .await?;
    Ok(Json(account_out(account)))
}

/// `PATCH /sync/v1/spaces/{id}` (owner).
pub async fn rename(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(space_id): Path<String>,
    JsonBody(body): JsonBody<RenameSpaceRequest>,
) -> Result<Json<SpaceOut>, ApiError> {
    check_path_id(&space_id, "space id")?;
    let name = check_space_name(&body.name).map_err(ApiError::validation_failed)?;
    let outcome = state
        .storage
        .rename_space(&user.user_id, &space_id, &name)
        .await?;
    let (space, notify) = done(outcome, &user, Some(&space_id), "rename space")?;
    poke_accounts(&state, &notify);
    Ok(Json(space_out(space)))
}

/// `DELETE /sync/v1/spaces/{id}` (owner): `204`.
pub async fn delete(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(space_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_path_id(&space_id, "space id")?;
    let outcome = state
        .storage
        .delete_space(&user.user_id, &space_id, state.clock.now_ms())
        .await?;
    let ((), notify) = done(outcome, &user, Some(&space_id), "delete space")?;
    poke_accounts(&state, &notify);
    tracing::info!(user_id = %user.user_id, space_id = %space_id, members = notify.len(), "space deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /sync/v1/spaces/{id}/members` (any member).
pub async fn members(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(space_id): Path<String>,
) -> Result<Json<MembersOut>, ApiError> {
    check_path_id(&space_id, "space id")?;
    let outcome = state.storage.members(&user.user_id, &space_id).await?;
    let members = done(outcome, &user, Some(&space_id), "list members")?;
    Ok(Json(MembersOut {
        members: members.into_iter().map(member_out).collect(),
    }))
}

/// `PUT /sync/v1/spaces/{id}/members/{userId}` (owner).
pub async fn set_role(
    State(state): State<SharedState>,
    user: AuthUser,
    Path((space_id, member_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetRoleRequest>,
) -> Result<Json<MemberOut>, ApiError> {
    check_path_id(&space_id, "space id")?;
    check_path_id(&member_id, "user id")?;
    let outcome = state
        .storage
        .set_role(&user.user_id, &space_id, &member_id, body.role)
        .await?;
    let (member, notify) = done(outcome, &user, Some(&space_id), "set role")?;
    poke_accounts(&state, &notify);
    Ok(Json(member_out(member)))
}

/// `DELETE /sync/v1/spaces/{id}/members/{userId}` (owner; anyone for their own id: leave): `204`.
pub async fn remove_member(
    State(state): State<SharedState>,
    user: AuthUser,
    Path((space_id, member_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_path_id(&space_id, "space id")?;
    check_path_id(&member_id, "user id")?;
    let outcome = state
        .storage
        .remove_member(&user.user_id, &space_id, &member_id)
        .await?;
    let ((), notify) = done(outcome, &user, Some(&space_id), "remove member")?;
    poke_accounts(&state, &notify);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sync/v1/spaces/{id}/invitations` (owner): `201` whether or not the email has an
/// account (so the answer tells nothing about who has one).
pub async fn invite(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(space_id): Path<String>,
    JsonBody(body): JsonBody<InviteRequest>,
) -> Result<Response, ApiError> {
    check_path_id(&space_id, "space id")?;
    let email = normalize_email(&body.email);
    if email.len() > tandem_protocol::MAX_EMAIL_LEN || !is_plausible_email(&email) {
        return Err(ApiError::validation_failed(
            "email must be of the form local@domain",
        ));
    }
    let outcome = state
        .storage
        .invite(
            &user.user_id,
            &space_id,
            &email,
            body.role,
            state.clock.now_ms(),
            state.space_limits,
        )
        .await?;
    let (invitation, notify) = done(outcome, &user, Some(&space_id), "invite")?;
    poke_accounts(&state, &notify);
    Ok((StatusCode::CREATED, Json(sent_invitation_out(invitation))).into_response())
}

/// `GET /sync/v1/spaces/{id}/invitations` (owner): the pending ones.
pub async fn invitations(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(space_id): Path<String>,
) -> Result<Json<SentInvitationsOut>, ApiError> {
    check_path_id(&space_id, "space id")?;
    let outcome = state
        .storage
        .space_invitations(&user.user_id, &space_id, state.clock.now_ms())
        .await?;
    let list = done(outcome, &user, Some(&space_id), "list invitations")?;
    Ok(Json(SentInvitationsOut {
        invitations: list.into_iter().map(sent_invitation_out).collect(),
    }))
}

/// `DELETE /sync/v1/spaces/{id}/invitations/{invId}` (owner): `204`.
pub async fn revoke(
    State(state): State<SharedState>,
    user: AuthUser,
    Path((space_id, invitation_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_path_id(&space_id, "space id")?;
    check_path_id(&invitation_id, "invitation id")?;
    let outcome = state
        .storage
        .revoke_invitation(&user.user_id, &space_id, &invitation_id)
        .await?;
    let ((), notify) = done(outcome, &user, Some(&space_id), "revoke invitation")?;
    poke_accounts(&state, &notify);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sync/v1/invitations/{invId}/accept` (the invitee): the space joined.
pub async fn accept(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(invitation_id): Path<String>,
) -> Result<Json<SpaceOut>, ApiError> {
    check_path_id(&invitation_id, "invitation id")?;
    let outcome = state
        .storage
        .accept_invitation(
            &user.user_id,
            &invitation_id,
            state.clock.now_ms(),
            state.space_limits,
        )
        .await?;
    let (space, notify) = done(outcome, &user, None, "accept invitation")?;
    poke_accounts(&state, &notify);
    tracing::info!(user_id = %user.user_id, space_id = %space.id, "joined space");
    Ok(Json(space_out(space)))
}

/// `POST /sync/v1/invitations/{invId}/decline` (the invitee): `204`.
pub async fn decline(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(invitation_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_path_id(&invitation_id, "invitation id")?;
    let outcome = state
        .storage
        .decline_invitation(&user.user_id, &invitation_id, state.clock.now_ms())
        .await?;
    let ((), notify) = done(outcome, &user, None, "decline invitation")?;
    poke_accounts(&state, &notify);
    Ok(StatusCode::NO_CONTENT)
}

/// The value of a `Done`, or the error answer of a refusal (logged at `info`: user id, space
/// id and code only).
fn done<T>(
    outcome: SpaceOutcome<T>,
    user: &AuthUser,
    space_id: Option<&str>,
    action: &'static str,
) -> Result<T, ApiError> {
    let error = match outcome {
        SpaceOutcome::Done(value) => return Ok(value),
        SpaceOutcome::NotFound => ApiError::space_not_found(),
        SpaceOutcome::Forbidden => ApiError::forbidden(),
        SpaceOutcome::LastOwner => ApiError::last_owner(),
        SpaceOutcome::AlreadyMember => ApiError::already_member(),
        SpaceOutcome::Limit => ApiError::limit_reached(
            "a limit of the server was reached (spaces per user, members per space or pending invitations per space)",
        ),
    };
    tracing::info!(
        user_id = %user.user_id,
        space_id = space_id.unwrap_or("-"),
        code = error.code.as_str(),
        action,
        "space call refused"
    );
    Err(error)
}

fn check_path_id(id: &str, what: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_request(id_rule(what)))
    }
}

fn id_rule(field: &str) -> String {
    format!("{field} must be 1..{MAX_ID_LEN} characters of [A-Za-z0-9_.:-]")
}

pub fn space_out(row: SpaceRow) -> SpaceOut {
    SpaceOut {
        id: row.id,
        name: row.name,
        role: row.role,
        member_count: row.member_count,
        created_at: rfc3339_from_ms(row.created_at_ms),
    }
}

fn member_out(row: MemberRow) -> MemberOut {
    MemberOut {
        user_id: row.user_id,
        email: row.email,
        role: row.role,
        joined_at: rfc3339_from_ms(row.joined_at_ms),
    }
}

pub fn invitation_out(row: InvitationRow) -> InvitationOut {
    InvitationOut {
        id: row.id,
        space_id: row.space_id,
        space_name: row.space_name,
        role: row.role,
        invited_by: row.invited_by_email,
        created_at: rfc3339_from_ms(row.created_at_ms),
        expires_at: rfc3339_from_ms(row.expires_at_ms),
    }
}

fn sent_invitation_out(row: InvitationRow) -> SentInvitationOut {
    SentInvitationOut {
        id: row.id,
        email: row.email,
        role: row.role,
        created_at: rfc3339_from_ms(row.created_at_ms),
        expires_at: rfc3339_from_ms(row.expires_at_ms),
    }
}

/// The account section (also a pull's `account`).
pub fn account_out(account: Account) -> AccountOut {
    AccountOut {
        account_seq: account.account_seq,
        spaces: account.spaces.into_iter().map(space_out).collect(),
        invitations: account
            .invitations
            .into_iter()
            .map(invitation_out)
            .collect(),
    }
}

/// Pokes the event streams of `user_ids` with `{"account": true}`. PostgreSQL sent the notices
/// inside the transaction (every instance gets them on commit); SQLite has one process.
fn poke_accounts(state: &SharedState, user_ids: &[String]) {
    if !state.storage.notifies_changes() {
        for user_id in user_ids {
            state.hub.publish_account(user_id);
        }
    }
}
