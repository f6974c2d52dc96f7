//! The key manager of one region (Huawei KMS's shape, see docs/kms.md): customer master keys
//! (CMKs) that belong to one project, with Huawei's states (`"2"` enabled, `"3"` disabled,
//! `"4"` pending deletion), and the envelope operations the image service uses: a fresh data
//! key wrapped by a CMK ([`Kms::new_data_key`]) and its unwrapping ([`Kms::open_data_key`]).
//!
//! Key material never leaves this module: a CMK is 32 random bytes stored only wrapped by the
//! operator's master key ([`master`]), with the key id and project as associated data (a row
//! copied to another id or project does not unwrap). Only the key's project may see or use it:
//! for any other project a key does not exist (404). A key whose scheduled deletion date has
//! passed is gone: it is not listed, not found, and what it wrapped can no longer be opened.
//!
//! Crash behaviour: every change is one statement; there is nothing to recover.

pub mod master;

use chrono::{DateTime, Utc};
use glimpse_store::sealed::{self, Key};
use glimpse_types::{db_time, now, parse_time};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::auth::Caller;
use crate::db::{Db, unique_or};
use crate::error::{Error, Result};

pub const ENABLED: &str = "2";
pub const DISABLED: &str = "3";
pub const PENDING_DELETION: &str = "4";

/// Shortest and longest waiting period of a scheduled deletion, in days (Huawei's bounds).
pub const MIN_PENDING_DAYS: i64 = 7;
pub const MAX_PENDING_DAYS: i64 = 1096;

/// Error codes of the KMS dialect (Glimpse's choices; see docs/kms.md).
pub mod codes {
    pub const BAD_REQUEST: &str = "KMS.0201";
    pub const BAD_ALIAS: &str = "KMS.0202";
    pub const BAD_PENDING_DAYS: &str = "KMS.0203";
    pub const BAD_KEY_ID: &str = "KMS.0205";
    pub const NOT_FOUND: &str = "KMS.0207";
    pub const ALIAS_EXISTS: &str = "KMS.0208";
    pub const WRONG_STATE: &str = "KMS.0209";
}

/// One customer master key as its project sees it (never its material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub project_id: String,
    pub alias: String,
    pub description: String,
    pub state: String,
    pub deletion_date: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A key the caller's project may use right now, with its material unwrapped.
pub struct UsableKey {
    pub id: String,
    key: Key,
}

pub struct Kms {
    db: Db,
    master: Key,
    /// The master key being rotated out: keys it wraps are still read ([`Kms::rewrap`]
    /// moves them to `master`).
    previous: Option<Key>,
}

const COLUMNS: &str =
    "id, project_id, alias, description, state, material, deletion_date, created_at";

fn from_row(row: &AnyRow) -> Result<(KeyInfo, String)> {
    let t = |c: &str| -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = row.try_get(c)?;
        Ok(s.as_deref().and_then(parse_time))
    };
    Ok((
        KeyInfo {
            id: row.try_get("id")?,
            project_id: row.try_get("project_id")?,
            alias: row.try_get("alias")?,
            description: row.try_get("description")?,
            state: row.try_get("state")?,
            deletion_date: t("deletion_date")?,
            created_at: t("created_at")?.unwrap_or_else(now),
        },
        row.try_get("material")?,
    ))
}

impl KeyInfo {
    /// Past its deletion date: the key no longer exists.
    fn is_gone(&self) -> bool {
        self.state == PENDING_DELETION && self.deletion_date.is_some_and(|d| d <= now())
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("The key {id} does not exist.")).with_code(codes::NOT_FOUND)
}

/// Key ids are lower-case hyphenated UUIDs (Huawei: 36 characters).
pub fn check_key_id(id: &str) -> Result<()> {
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }
        });
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "The key_id {id:?} is invalid: it must be a 36-character key id."
        ))
        .with_code(codes::BAD_KEY_ID))
    }
}

fn may_write(caller: &Caller) -> Result<()> {
    caller.project()?;
    if caller.is_member() || caller.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("Managing keys needs the member role."))
    }
}

impl Kms {
    pub fn new(db: Db, master: Key) -> Kms {
        Kms {
            db,
            master,
            previous: None,
        }
    }

    /// This key manager during a master key rotation: `previous` still opens what it wrapped.
    pub fn with_previous(mut self, previous: Option<Key>) -> Kms {
        self.previous = previous;
        self
    }

    /// Whether a master key rotation is in progress (a previous key is configured).
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// A customer key's material, unwrapped with the master key, or the previous one during
    /// a rotation; `None` if neither opens it. The bool: it needed the previous key.
    fn open_material(&self, id: &str, project: &str, material: &str) -> Option<(Key, bool)> {
        let wrapped = hex::decode(material).ok()?;
        let aad = Self::material_aad(id, project);
        if let Some(k) = sealed::unwrap_key(&self.master, &wrapped, &aad) {
            return Some((k, false));
        }
        let previous = self.previous.as_ref()?;
        sealed::unwrap_key(previous, &wrapped, &aad).map(|k| (k, true))
    }

    /// Re-wraps with the master key every customer key still wrapped by the previous one (a
    /// rotation, docs/kms.md); each row is changed by a conditional UPDATE, so concurrent
    /// runs and a crash midway are harmless. Returns (re-wrapped, already current, opened by
    /// neither key: logged, left as they are).
    pub async fn rewrap(&self) -> Result<(u64, u64, u64)> {
        let rows = sqlx::query("SELECT id, project_id, material FROM kms_keys")
            .fetch_all(&self.db.pool)
            .await?;
        let (mut moved, mut current, mut lost) = (0, 0, 0);
        for row in rows {
            let id: String = row.try_get("id")?;
            let project: String = row.try_get("project_id")?;
            let material: String = row.try_get("material")?;
            match self.open_material(&id, &project, &material) {
                Some((_, false)) => current += 1,
                Some((key, true)) => {
                    let fresh = hex::encode(sealed::wrap_key(
                        &self.master,
                        &key,
                        &Self::material_aad(&id, &project),
                    ));
                    sqlx::query(
                        "UPDATE kms_keys SET material = $1 WHERE id = $2 AND material = $3",
                    )
                    .bind(fresh)
                    .bind(&id)
                    .bind(&material)
                    .execute(&self.db.pool)
                    .await?;
                    moved += 1;
                }
                None => {
                    tracing::error!(key = %id, project = %project,
                        "a customer key opens with neither the master key nor the previous one");
                    lost += 1;
                }
            }
        }
        Ok((moved, current, lost))
    }

    fn material_aad(id: &str, project: &str) -> Vec<u8> {
        format!("glimpse-cmk:{id}:{project}").into_bytes()
    }

    /// Creates an enabled key in the caller's project.
    pub async fn create(&self, caller: &Caller, alias: &str, description: &str) -> Result<KeyInfo> {
        may_write(caller)?;
        let project = caller.project()?;
        let alias_ok = !alias.is_empty()
            && alias.len() <= 255
            && alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c))
            && !alias.ends_with("/default");
        if !alias_ok {
            return Err(Error::bad_request(
                "The key_alias is invalid: 1 to 255 characters of letters, digits, ':', '/', '_' \
                 and '-', not ending in '/default'.",
            )
            .with_code(codes::BAD_ALIAS));
        }
        if description.chars().count() > 255 {
            return Err(
                Error::bad_request("The key_description is longer than 255 characters.")
                    .with_code(codes::BAD_REQUEST),
            );
        }
        let id = glimpse_types::uuid_id();
        let key: Key = sealed::random();
        let material = hex::encode(sealed::wrap_key(
            &self.master,
            &key,
            &Self::material_aad(&id, project),
        ));
        let t = db_time(now());
        let r = sqlx::query(
            "INSERT INTO kms_keys (id, project_id, alias, description, state, material, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(project)
        .bind(alias)
        .bind(description)
        .bind(ENABLED)
        .bind(material)
        .bind(&t)
        .execute(&self.db.pool)
        .await;
        unique_or(r, || {
            Error::bad_request(format!(
                "The key_alias {alias} already exists in this project."
            ))
            .with_code(codes::ALIAS_EXISTS)
        })?;
        tracing::info!(key = %id, project, "customer master key created");
        self.find(project, &id).await
    }

    /// A key of `project` (404 for any other project's, or a deleted one).
    async fn load(&self, project: &str, id: &str) -> Result<(KeyInfo, String)> {
        self.load_in(Some(project), id).await
    }

    /// A key by id, of `project` when given (any project's otherwise); 404 when deleted.
    async fn load_in(&self, project: Option<&str>, id: &str) -> Result<(KeyInfo, String)> {
        check_key_id(id)?;
        let sql = match project {
            Some(_) => format!("SELECT {COLUMNS} FROM kms_keys WHERE id = $1 AND project_id = $2"),
            None => format!("SELECT {COLUMNS} FROM kms_keys WHERE id = $1"),
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
        if let Some(p) = project {
            q = q.bind(p);
        }
        let row = q.fetch_optional(&self.db.pool).await?;
        match row.as_ref().map(from_row).transpose()? {
            Some((k, m)) if !k.is_gone() => Ok((k, m)),
            _ => Err(not_found(id)),
        }
    }

    async fn find(&self, project: &str, id: &str) -> Result<KeyInfo> {
        Ok(self.load(project, id).await?.0)
    }

    /// Shows one key of the caller's project.
    pub async fn describe(&self, caller: &Caller, id: &str) -> Result<KeyInfo> {
        self.find(caller.project()?, id).await
    }

    /// The caller project's keys (oldest first), optionally of one state.
    pub async fn list(&self, caller: &Caller, state: Option<&str>) -> Result<Vec<KeyInfo>> {
        let project = caller.project()?;
        let sql =
            format!("SELECT {COLUMNS} FROM kms_keys WHERE project_id = $1 ORDER BY created_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = Vec::new();
        for row in &rows {
            let (k, _) = from_row(row)?;
            if !k.is_gone() && state.is_none_or(|s| s == k.state) {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// Moves a key from one of `from` to `to` (with a deletion date for pending deletion).
    async fn transition(
        &self,
        caller: &Caller,
        id: &str,
        from: &[&str],
        to: &str,
        deletion_date: Option<DateTime<Utc>>,
    ) -> Result<KeyInfo> {
        may_write(caller)?;
        let project = caller.project()?;
        let key = self.find(project, id).await?;
        if key.state == to && deletion_date.is_none() {
            return Ok(key);
        }
        if !from.contains(&key.state.as_str()) {
            return Err(Error::bad_request(format!(
                "The key {id} is in state {} ({}); the operation needs {}.",
                key.state,
                state_name(&key.state),
                from.iter()
                    .map(|s| state_name(s))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
            .with_code(codes::WRONG_STATE));
        }
        let n = sqlx::query(
            "UPDATE kms_keys SET state = $1, deletion_date = $2, updated_at = $3 \
             WHERE id = $4 AND project_id = $5 AND state = $6",
        )
        .bind(to)
        .bind(deletion_date.map(db_time))
        .bind(db_time(now()))
        .bind(id)
        .bind(project)
        .bind(&key.state)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(
                Error::conflict(format!("The key {id} changed meanwhile; try again."))
                    .with_code(codes::WRONG_STATE),
            );
        }
        tracing::info!(key = %id, project, state = to, "customer master key state changed");
        self.find(project, id).await
    }

    pub async fn enable(&self, caller: &Caller, id: &str) -> Result<KeyInfo> {
        self.transition(caller, id, &[DISABLED], ENABLED, None)
            .await
    }

    pub async fn disable(&self, caller: &Caller, id: &str) -> Result<KeyInfo> {
        self.transition(caller, id, &[ENABLED], DISABLED, None)
            .await
    }

    /// Schedules the deletion in `days` days (7–1096); the key is unusable from now on.
    pub async fn schedule_deletion(&self, caller: &Caller, id: &str, days: i64) -> Result<KeyInfo> {
        if !(MIN_PENDING_DAYS..=MAX_PENDING_DAYS).contains(&days) {
            return Err(Error::bad_request(format!(
                "pending_days must be from {MIN_PENDING_DAYS} to {MAX_PENDING_DAYS}."
            ))
            .with_code(codes::BAD_PENDING_DAYS));
        }
        let when = now() + chrono::Duration::days(days);
        self.transition(
            caller,
            id,
            &[ENABLED, DISABLED],
            PENDING_DELETION,
            Some(when),
        )
        .await
    }

    /// Cancels a scheduled deletion; the key comes back disabled (as in Huawei KMS).
    pub async fn cancel_deletion(&self, caller: &Caller, id: &str) -> Result<KeyInfo> {
        self.transition(caller, id, &[PENDING_DELETION], DISABLED, None)
            .await
    }

    /// The key `id` of `project`, if it exists and is enabled: 404 if not the project's (or
    /// deleted), 400 with `code` if disabled or pending deletion.
    pub async fn usable(&self, project: &str, id: &str) -> Result<UsableKey> {
        let (info, material) = self.load(project, id).await?;
        self.open_enabled(&info, &material)
    }

    /// The material of a loaded key, if the key is enabled (400 with `code` otherwise).
    fn open_enabled(&self, info: &KeyInfo, material: &str) -> Result<UsableKey> {
        let id = &info.id;
        if info.state != ENABLED {
            return Err(Error::bad_request(format!(
                "The key {id} is {} and cannot be used.",
                state_name(&info.state)
            ))
            .with_code(codes::WRONG_STATE));
        }
        let (key, _) = self
            .open_material(id, &info.project_id, material)
            .ok_or_else(|| {
                Error::internal(format!(
                    "key {id} does not unwrap with this region's master key"
                ))
            })?;
        Ok(UsableKey {
            id: id.clone(),
            key,
        })
    }

    /// The data key of a sealed image, unwrapped with its (enabled) key, whoever's project
    /// the key is in: for internal use after the caller was authorized. One read of the key.
    pub async fn data_key_of(&self, s: &crate::images::Sealing) -> Result<Key> {
        let (info, material) = self.load_in(None, &s.cmk_id).await?;
        let cmk = self.open_enabled(&info, &material)?;
        self.open_data_key(&cmk, &s.wrapped_data_key)
    }

    fn data_key_aad(cmk: &str) -> Vec<u8> {
        format!("glimpse-dek:{cmk}").into_bytes()
    }

    /// A fresh data key and its wrapped form (hex) under `cmk`.
    pub fn new_data_key(&self, cmk: &UsableKey) -> (Key, String) {
        let dek: Key = sealed::random();
        let wrapped = sealed::wrap_key(&cmk.key, &dek, &Self::data_key_aad(&cmk.id));
        (dek, hex::encode(wrapped))
    }

    /// Unwraps a data key made by [`Kms::new_data_key`] under `cmk`.
    pub fn open_data_key(&self, cmk: &UsableKey, wrapped_hex: &str) -> Result<Key> {
        let wrapped = hex::decode(wrapped_hex).map_err(Error::internal)?;
        sealed::unwrap_key(&cmk.key, &wrapped, &Self::data_key_aad(&cmk.id)).ok_or_else(|| {
            Error::internal(format!("a data key does not unwrap with key {}", cmk.id))
        })
    }
}

/// Huawei's word for a state code.
pub fn state_name(state: &str) -> &'static str {
    match state {
        ENABLED => "enabled",
        DISABLED => "disabled",
        PENDING_DELETION => "pending deletion",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(project: &str) -> Caller {
        Caller {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: Some(project.into()),
            project_name: None,
            roles: vec!["member".into(), "reader".into()],
            expires_at: now() + chrono::Duration::hours(1),
        }
    }

    /// A master key rotation: with the new key current and the old one as previous, keys
    /// wrapped by the old one still work and `rewrap` moves them; afterwards the new key
    /// alone opens them, the old one alone no longer does, and what the keys wrapped (data
    /// keys of encrypted images) is untouched.
    #[tokio::test]
    async fn a_master_key_rotation_rewraps_every_key() {
        let dir = crate::testing::TempDir::new("kms");
        let db = crate::testing::region_db(&dir.0, "kms").await;
        let (old, new): (Key, Key) = (sealed::random(), sealed::random());
        let before = Kms::new(db.clone(), old);
        let k1 = before.create(&member("pa"), "one", "").await.unwrap();
        let k2 = before.create(&member("pb"), "two", "").await.unwrap();
        before.disable(&member("pb"), &k2.id).await.unwrap();
        let u1 = before.usable("pa", &k1.id).await.unwrap();
        let (dek, wrapped) = before.new_data_key(&u1);

        let rotating = Kms::new(db.clone(), new).with_previous(Some(old));
        assert_eq!(rotating.usable("pa", &k1.id).await.unwrap().key, u1.key);
        assert_eq!(rotating.rewrap().await.unwrap(), (2, 0, 0));
        assert_eq!(rotating.rewrap().await.unwrap(), (0, 2, 0), "idempotent");

        let after = Kms::new(db.clone(), new);
        let u1_after = after.usable("pa", &k1.id).await.unwrap();
        assert_eq!(u1_after.key, u1.key, "the customer key itself is unchanged");
        assert_eq!(after.open_data_key(&u1_after, &wrapped).unwrap(), dek);
        after.enable(&member("pb"), &k2.id).await.unwrap();
        assert!(
            after.usable("pb", &k2.id).await.is_ok(),
            "disabled keys moved too"
        );
        assert_eq!(
            before.usable("pa", &k1.id).await.err().unwrap().kind,
            crate::Kind::Internal,
            "the old master key no longer opens anything"
        );
        // A key that opens with neither is reported, not lost or changed.
        let stranger = Kms::new(db.clone(), sealed::random()).with_previous(Some(old));
        assert_eq!(stranger.rewrap().await.unwrap(), (0, 0, 2));
        assert!(after.usable("pa", &k1.id).await.is_ok());
    }

    #[tokio::test]
    async fn a_key_past_its_deletion_date_is_gone_with_what_it_wrapped() {
        let dir = crate::testing::TempDir::new("kms");
        let db = crate::testing::region_db(&dir.0, "kms").await;
        let kms = Kms::new(db.clone(), sealed::random());
        let a = member("pa");
        let key = kms.create(&a, "k", "").await.unwrap();
        let usable = kms.usable("pa", &key.id).await.unwrap();
        let (dek, wrapped) = kms.new_data_key(&usable);
        assert_eq!(kms.open_data_key(&usable, &wrapped).unwrap(), dek);
        // Another project: not found, whatever it tries.
        assert_eq!(
            kms.usable("pb", &key.id).await.err().unwrap().kind,
            crate::Kind::NotFound
        );
        assert_eq!(
            kms.disable(&member("pb"), &key.id).await.unwrap_err().kind,
            crate::Kind::NotFound
        );
        // The stored material is not the key.
        let material: String = sqlx::query_scalar("SELECT material FROM kms_keys WHERE id = $1")
            .bind(&key.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(material.len(), 2 * sealed::WRAPPED_LEN);
        assert!(!material.contains(&hex::encode(usable.key)));

        kms.schedule_deletion(&a, &key.id, 7).await.unwrap();
        assert_eq!(
            kms.usable("pa", &key.id).await.err().unwrap().kind,
            crate::Kind::BadRequest
        );
        sqlx::query("UPDATE kms_keys SET deletion_date = $1 WHERE id = $2")
            .bind(db_time(now() - chrono::Duration::seconds(1)))
            .bind(&key.id)
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            kms.describe(&a, &key.id).await.unwrap_err().kind,
            crate::Kind::NotFound
        );
        assert_eq!(
            kms.usable("pa", &key.id).await.err().unwrap().kind,
            crate::Kind::NotFound
        );
        assert!(kms.list(&a, None).await.unwrap().is_empty());
        assert_eq!(
            kms.cancel_deletion(&a, &key.id).await.unwrap_err().kind,
            crate::Kind::NotFound
        );
    }
}
