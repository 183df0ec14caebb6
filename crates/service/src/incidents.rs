//! Who may see and change an incident, and every change to one: create, edit, close, reopen,
//! note, war-room entries, delete, and one change to many. Each rule is here once.

use serde_json::Value;
use watchfloor_core::{Change, Edit, Incident};
use watchfloor_storage::{ManualIncident, Role, Scope, WarRoomEntry};

use crate::error::no_nul;
use crate::{Caller, QueueParams, Service, ServiceError};

impl Service {
    /// The incident, if the caller may see it: another organization's incident does not
    /// exist, as far as this caller can tell.
    pub async fn visible(&self, caller: &Caller, id: i64) -> Result<Incident, ServiceError> {
        self.store
            .incident_in(&caller.scope, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no incident {id}")))
    }

    /// Refuses viewers, who read incidents but change none.
    pub fn may_change(&self, caller: &Caller) -> Result<(), ServiceError> {
        match caller.role {
            Role::Viewer => Err(ServiceError::Forbidden(
                "viewers cannot change incidents".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The incident, if the caller may change it.
    pub async fn changeable(&self, caller: &Caller, id: i64) -> Result<Incident, ServiceError> {
        let incident = self.visible(caller, id).await?;
        self.may_change(caller)?;
        Ok(incident)
    }

    /// Makes an incident by hand, in one of the caller's organizations.
    pub async fn create(
        &self,
        caller: &Caller,
        mut incident: ManualIncident,
    ) -> Result<Incident, ServiceError> {
        self.may_change(caller)?;
        if !caller.scope.allows(incident.organization.as_deref()) {
            return Err(ServiceError::Forbidden(
                "you can create incidents only in your own organizations: give the incident one of them as its organization".into(),
            ));
        }
        // An organization is spelled as the caller's scope spells it, so that its incidents
        // are not split across spellings.
        if let (Scope::Orgs(orgs), Some(given)) = (&caller.scope, incident.organization.as_mut())
            && let Some(spelled) = orgs.iter().find(|o| o.eq_ignore_ascii_case(given))
        {
            given.clone_from(spelled);
        }
        incident.name = incident.name.trim().to_string();
        if incident.name.is_empty() {
            return Err(ServiceError::Invalid("the incident needs a name".into()));
        }
        no_nul("the name", &incident.name)?;
        no_nul("the details", &incident.details)?;
        no_nul("the type", &incident.kind)?;
        no_nul(
            "the organization",
            incident.organization.as_deref().unwrap_or_default(),
        )?;
        no_nul("the owner", incident.owner.as_deref().unwrap_or_default())?;
        no_labels_with_nul(&incident.labels)?;
        if let Some(owner) = &incident.owner {
            self.check_owner(owner, incident.organization.as_deref())
                .await?;
        }
        Ok(self
            .store
            .create_incident(&incident, &caller.name, &self.sla)
            .await?)
    }

    /// A lifecycle change (an edit, a close, a reopen), refused if the incident changed since
    /// `version`.
    pub async fn change(
        &self,
        caller: &Caller,
        id: i64,
        version: Option<i64>,
        change: &Change,
    ) -> Result<Incident, ServiceError> {
        let incident = self.changeable(caller, id).await?;
        check_change(change)?;
        if let Some(owner) = owner_of(change) {
            self.check_owner(owner, incident.organization.as_deref())
                .await?;
        }
        Ok(self
            .store
            .change_incident(id, version, &caller.name, change, &self.sla)
            .await?)
    }

    /// The users an incident may be assigned to (enabled, and seeing its organization), by
    /// name: what the UI offers as one types an owner.
    pub async fn assignable(&self, caller: &Caller, id: i64) -> Result<Vec<String>, ServiceError> {
        let incident = self.visible(caller, id).await?;
        let org = incident.organization.as_deref();
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .filter(|u| !u.disabled && Scope::of(u).allows(org))
            .map(|u| u.name)
            .collect())
    }

    /// Refuses an owner who is no user, is disabled, or cannot see the incident's
    /// organization: a name that nobody can act as would leave the incident with no one.
    async fn check_owner(
        &self,
        owner: &str,
        organization: Option<&str>,
    ) -> Result<(), ServiceError> {
        let user = self.working_user(owner).await?;
        owner_sees(&user, organization)
    }

    /// The user `owner` names, if enabled: someone who can work an incident.
    async fn working_user(&self, owner: &str) -> Result<watchfloor_storage::User, ServiceError> {
        let Some(user) = self.store.user(owner).await? else {
            return Err(ServiceError::Invalid(format!(
                "there is no user {owner}: assign the incident to one of `users list`"
            )));
        };
        if user.disabled {
            return Err(ServiceError::Invalid(format!(
                "{owner} is disabled: assign the incident to a user who can work it"
            )));
        }
        Ok(user)
    }

    /// What a change to many can be refused for before any incident is read: the caller's
    /// role, text the store could not keep, and an owner who is no user or is disabled (whether
    /// the owner sees each incident's organization is still asked of each). A dry run asks
    /// this too, so that it fails as the change would.
    async fn check_many(&self, caller: &Caller, change: &Change) -> Result<(), ServiceError> {
        self.may_change(caller)?;
        check_change(change)?;
        if let Some(owner) = owner_of(change) {
            self.working_user(owner).await?;
        }
        Ok(())
    }

    /// Several changes to one incident, all of them or none.
    pub async fn change_all(
        &self,
        caller: &Caller,
        id: i64,
        version: Option<i64>,
        changes: &[Change],
    ) -> Result<Incident, ServiceError> {
        let incident = self.changeable(caller, id).await?;
        changes.iter().try_for_each(check_change)?;
        for owner in changes.iter().filter_map(owner_of) {
            self.check_owner(owner, incident.organization.as_deref())
                .await?;
        }
        Ok(self
            .store
            .change_incident_all(id, version, &caller.name, changes, &self.sla)
            .await?)
    }

    /// One change to many incidents, each through the same rules as one: the changed
    /// incidents, and for each of the others why it was refused. A failure of the store stops
    /// the batch.
    pub async fn change_many(
        &self,
        caller: &Caller,
        ids: &[i64],
        change: &Change,
    ) -> Result<(Vec<Incident>, Vec<(i64, String)>), ServiceError> {
        self.may_change(caller)?;
        let seen = self.seen_ids(caller, ids).await?;
        self.change_seen(caller, seen, change).await
    }

    /// Each of `ids` read within the caller's scope, or why it cannot be (one of another
    /// organization is not found); at most [`MAX_BATCH`] of them.
    async fn seen_ids(&self, caller: &Caller, ids: &[i64]) -> Result<Vec<Seen>, ServiceError> {
        if ids.len() > MAX_BATCH {
            return Err(ServiceError::Invalid(format!(
                "at most {MAX_BATCH} incidents at once"
            )));
        }
        let mut seen = Vec::with_capacity(ids.len());
        for &id in ids {
            seen.push(match self.visible(caller, id).await {
                Ok(incident) => Ok(incident),
                Err(e) if e.is_callers() => Err((id, e.to_string())),
                Err(e) => return Err(e),
            });
        }
        Ok(seen)
    }

    /// The incidents a selection names, as a change to many takes them: given ids once each,
    /// in their order, each read within the caller's scope or refused as not found; a
    /// filter's matches, as [`Service::selection`] takes them.
    async fn seen(
        &self,
        caller: &Caller,
        selection: &Selection,
    ) -> Result<Vec<Seen>, ServiceError> {
        match selection {
            Selection::Ids(ids) => self.seen_ids(caller, &once_each(ids)).await,
            Selection::Matching(_) => Ok(self
                .selection(caller, selection)
                .await?
                .into_iter()
                .map(Ok)
                .collect()),
        }
    }

    /// [`Service::change_many`] for incidents already read within the caller's scope (or, for
    /// an id, why it cannot be: refused as it is). The rules of a change to one, each asked
    /// once where its answer is the same for every incident (the change's text, the owner),
    /// then each incident's own (whether the owner sees it, the lifecycle), and the change
    /// itself, many to a transaction. Every refusal says what a change to one would say.
    async fn change_seen(
        &self,
        caller: &Caller,
        seen: Vec<Seen>,
        change: &Change,
    ) -> Result<(Vec<Incident>, Vec<(i64, String)>), ServiceError> {
        self.may_change(caller)?;
        if seen.len() > MAX_BATCH {
            return Err(ServiceError::Invalid(format!(
                "at most {MAX_BATCH} incidents at once"
            )));
        }
        let mut for_all = check_change(change).err().map(|e| e.to_string());
        let mut owner = None;
        if let (None, Some(name)) = (&for_all, owner_of(change)) {
            match self.working_user(name).await {
                Ok(user) => owner = Some(user),
                Err(e) if e.is_callers() => for_all = Some(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        // Each incident's id and refusal, or None for one to change.
        let mut refusals: Vec<(i64, Option<String>)> = Vec::with_capacity(seen.len());
        let mut to_change = Vec::new();
        for incident in seen {
            let allowed = match incident {
                Ok(incident) => match (&for_all, &owner) {
                    (Some(why), _) => Err((incident.id, why.clone())),
                    (None, Some(user)) => owner_sees(user, incident.organization.as_deref())
                        .map(|()| incident.id)
                        .map_err(|e| (incident.id, e.to_string())),
                    (None, None) => Ok(incident.id),
                },
                Err(refused) => Err(refused),
            };
            match allowed {
                Ok(id) => {
                    to_change.push(id);
                    refusals.push((id, None));
                }
                Err((id, why)) => refusals.push((id, Some(why))),
            }
        }
        let mut results = self
            .store
            .change_incidents(&to_change, &caller.name, change, &self.sla)
            .await?
            .into_iter();
        let mut changed = Vec::new();
        let mut refused = Vec::new();
        for (id, refusal) in refusals {
            let outcome = match refusal {
                Some(why) => Err(why),
                None => match results.next() {
                    Some(Ok(incident)) => Ok(incident),
                    Some(Err(e)) => Err(ServiceError::from(e).to_string()),
                    None => Err("the store did not answer for it".into()),
                },
            };
            match outcome {
                Ok(incident) => changed.push(incident),
                Err(why) => refused.push((id, why)),
            }
        }
        Ok((changed, refused))
    }

    /// The incidents a selection names that the caller may see. A filter that names nothing
    /// to match by, that pages (`after`, `limit`), or that matches more than [`MAX_BATCH`]
    /// incidents is refused, so that no change reaches further than asked or stops halfway.
    async fn selection(
        &self,
        caller: &Caller,
        selection: &Selection,
    ) -> Result<Vec<Incident>, ServiceError> {
        match selection {
            Selection::Ids(ids) => {
                if ids.len() > MAX_BATCH {
                    return Err(ServiceError::Invalid(format!(
                        "at most {MAX_BATCH} incidents at once"
                    )));
                }
                let mut found = Vec::new();
                for id in once_each(ids) {
                    match self.visible(caller, id).await {
                        Ok(incident) => found.push(incident),
                        Err(ServiceError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(found)
            }
            Selection::Matching(q) => {
                if q.selects_nothing() {
                    return Err(ServiceError::Invalid(
                        "choose incidents by id or by at least one filter: an empty filter would take every incident".into(),
                    ));
                }
                if q.after.is_some() || q.limit.is_some() || q.count {
                    return Err(ServiceError::Invalid(
                        "a change to many takes every incident its filter matches: leave out `after`, `limit` and `count`".into(),
                    ));
                }
                self.matching_at_most(caller, q.filter(caller)?, MAX_BATCH)
                    .await?
                    .ok_or_else(|| ServiceError::Invalid(format!(
                        "more than {MAX_BATCH} incidents match: narrow the filter (an organization, a severity or a time) and change them in parts"
                    )))
            }
        }
    }

    /// What a change to many would be tried on, changing nothing: refused as the change would
    /// be ([`Service::check_many`]), else the incidents the selection names that the caller
    /// may see (each still goes through the lifecycle rules when changed).
    pub async fn preview(
        &self,
        caller: &Caller,
        selection: &Selection,
        change: &Change,
    ) -> Result<Vec<Incident>, ServiceError> {
        self.check_many(caller, change).await?;
        self.selection(caller, selection).await
    }

    /// One change to each incident a selection names, as [`Service::change_many`] makes it:
    /// given ids once each, in their order (one the caller cannot see is refused as not
    /// found); a filter's matches within the caller's organizations, in the queue's order, as
    /// [`Service::selection`] takes them.
    pub async fn change_selected(
        &self,
        caller: &Caller,
        selection: &Selection,
        change: &Change,
    ) -> Result<(Vec<Incident>, Vec<(i64, String)>), ServiceError> {
        self.check_many(caller, change).await?;
        let seen = self.seen(caller, selection).await?;
        self.change_seen(caller, seen, change).await
    }

    /// A note in the war room; with `mirror`, it also goes to the provider.
    pub async fn note(
        &self,
        caller: &Caller,
        id: i64,
        text: &str,
        mirror: bool,
    ) -> Result<WarRoomEntry, ServiceError> {
        self.note_at(caller, id, None, text, mirror).await
    }

    /// [`Service::note`], refused if the incident changed since `version` (a note changes no
    /// field, so it leaves the version as it is).
    pub async fn note_at(
        &self,
        caller: &Caller,
        id: i64,
        version: Option<i64>,
        text: &str,
        mirror: bool,
    ) -> Result<WarRoomEntry, ServiceError> {
        let incident = self.changeable(caller, id).await?;
        check_note(text)?;
        if let Some(expected) = version.filter(|v| *v != incident.version) {
            return Err(watchfloor_storage::StoreError::Conflict {
                id,
                expected,
                found: incident.version,
            }
            .into());
        }
        Ok(self.store.add_note(id, &caller.name, text, mirror).await?)
    }

    /// The same note on each incident a selection names (as [`Service::change_selected`]
    /// takes them), as [`Service::note`] adds it to one, many to a transaction: the incidents
    /// noted, and for each of the others why not. A note no incident may take (empty, or from
    /// a viewer) is refused whole.
    pub async fn note_selected(
        &self,
        caller: &Caller,
        selection: &Selection,
        text: &str,
        mirror: bool,
    ) -> Result<(Vec<Incident>, Vec<(i64, String)>), ServiceError> {
        self.may_change(caller)?;
        check_note(text)?;
        let mut noted = Vec::new();
        let mut refused = Vec::new();
        let mut to_note = Vec::new();
        let mut order = Vec::new();
        for seen in self.seen(caller, selection).await? {
            match seen {
                Ok(incident) => {
                    to_note.push(incident.id);
                    order.push(Ok(incident));
                }
                Err(why) => order.push(Err(why)),
            }
        }
        let mut results = self
            .store
            .add_notes(&to_note, &caller.name, text, mirror)
            .await?
            .into_iter();
        for outcome in order {
            match outcome {
                Ok(incident) => match results.next() {
                    Some(Ok(_)) => noted.push(incident),
                    Some(Err(e)) => refused.push((incident.id, ServiceError::from(e).to_string())),
                    None => refused.push((incident.id, "the store did not answer for it".into())),
                },
                Err(why) => refused.push(why),
            }
        }
        Ok((noted, refused))
    }

    /// What a note on many would be added to, adding none: refused as the note would be,
    /// else the incidents the selection names that the caller may see.
    pub async fn preview_note(
        &self,
        caller: &Caller,
        selection: &Selection,
        text: &str,
    ) -> Result<Vec<Incident>, ServiceError> {
        self.may_change(caller)?;
        check_note(text)?;
        self.selection(caller, selection).await
    }

    /// `what` to each incident a selection names: [`Service::change_selected`] or
    /// [`Service::note_selected`].
    pub async fn to_each_selected(
        &self,
        caller: &Caller,
        selection: &Selection,
        what: &ToEach,
    ) -> Result<(Vec<Incident>, Vec<(i64, String)>), ServiceError> {
        match what {
            ToEach::Change(change) => self.change_selected(caller, selection, change).await,
            ToEach::Note { text, mirror } => {
                self.note_selected(caller, selection, text, *mirror).await
            }
        }
    }

    /// What [`Service::to_each_selected`] would be tried on, doing nothing:
    /// [`Service::preview`] or [`Service::preview_note`].
    pub async fn preview_each(
        &self,
        caller: &Caller,
        selection: &Selection,
        what: &ToEach,
    ) -> Result<Vec<Incident>, ServiceError> {
        match what {
            ToEach::Change(change) => self.preview(caller, selection, change).await,
            ToEach::Note { text, .. } => self.preview_note(caller, selection, text).await,
        }
    }

    /// Another kind of war-room entry (XSOAR's chat and formatted entries).
    pub async fn add_entry(
        &self,
        caller: &Caller,
        id: i64,
        kind: &str,
        body: &Value,
    ) -> Result<WarRoomEntry, ServiceError> {
        self.changeable(caller, id).await?;
        Ok(self.store.add_entry(id, &caller.name, kind, body).await?)
    }

    /// Deletes an incident; its alert is never fetched again.
    pub async fn delete(&self, caller: &Caller, id: i64) -> Result<Incident, ServiceError> {
        let incident = self.changeable(caller, id).await?;
        self.store.delete_incident(id, &caller.name).await?;
        Ok(incident)
    }

    /// Deletes each incident the caller may delete: the deleted ones, and how many were not.
    pub async fn delete_many(
        &self,
        caller: &Caller,
        ids: &[i64],
    ) -> Result<(Vec<Incident>, usize), ServiceError> {
        self.may_change(caller)?;
        let mut deleted = Vec::new();
        let mut not = 0;
        for &id in ids {
            match self.delete(caller, id).await {
                Ok(incident) => deleted.push(incident),
                Err(e) if e.is_callers() => not += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((deleted, not))
    }

    /// The war room, oldest first.
    pub async fn entries(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<Vec<WarRoomEntry>, ServiceError> {
        self.visible(caller, id).await?;
        Ok(self.store.entries(id).await?)
    }

    /// The context that commands run in the incident have built.
    pub async fn context(&self, caller: &Caller, id: i64) -> Result<Value, ServiceError> {
        self.visible(caller, id).await?;
        Ok(self.store.context(id).await?)
    }
}

/// `ids` without repeats, in their order.
fn once_each(ids: &[i64]) -> Vec<i64> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// An incident of a change to many, read within the caller's scope, or its id and why it
/// cannot be changed.
type Seen = Result<Incident, (i64, String)>;

/// Refuses a note no incident could take: empty, or text the store could not keep.
fn check_note(text: &str) -> Result<(), ServiceError> {
    if text.trim().is_empty() {
        return Err(ServiceError::Invalid("the note is empty".into()));
    }
    no_nul("the note", text)
}

/// What a change to many does to each incident: a lifecycle change, or the same note (with
/// `mirror`, sent to the provider too).
#[derive(Debug, Clone, PartialEq)]
pub enum ToEach {
    Change(Change),
    Note { text: String, mirror: bool },
}

/// Which incidents one change to many is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// These, by id.
    Ids(Vec<i64>),
    /// Every incident a queue filter matches, as `incidents list` and the queue read them.
    Matching(Box<QueueParams>),
}

/// Refuses an owner who cannot see `organization`: nobody could work the incident.
fn owner_sees(
    user: &watchfloor_storage::User,
    organization: Option<&str>,
) -> Result<(), ServiceError> {
    if !Scope::of(user).allows(organization) {
        return Err(ServiceError::Invalid(format!(
            "{} cannot see this incident's organization ({}): assign it to a user of that organization",
            user.name,
            organization.unwrap_or("none")
        )));
    }
    Ok(())
}

/// The owner a change assigns, if it assigns one.
fn owner_of(change: &Change) -> Option<&str> {
    match change {
        Change::Update(Edit {
            owner: Some(Some(owner)),
            ..
        }) => Some(owner),
        _ => None,
    }
}

/// Refuses a change whose text the store could not keep as written.
pub(crate) fn check_change(change: &Change) -> Result<(), ServiceError> {
    match change {
        Change::Update(edit) => {
            no_nul(
                "the owner",
                edit.owner.clone().flatten().as_deref().unwrap_or_default(),
            )?;
            no_nul("the type", edit.kind.as_deref().unwrap_or_default())?;
            no_labels_with_nul(&edit.labels)
        }
        Change::Close { notes, .. } => {
            no_nul("the close notes", notes.as_deref().unwrap_or_default())
        }
        Change::Reopen => Ok(()),
    }
}

fn no_labels_with_nul(labels: &[watchfloor_core::Label]) -> Result<(), ServiceError> {
    labels.iter().try_for_each(|l| {
        no_nul("a label", &l.kind)?;
        no_nul("a label", &l.value)
    })
}

/// The most incidents one bulk change takes (XSOAR's batch close with `all` reads up to this
/// many).
pub const MAX_BATCH: usize = 10_000;
