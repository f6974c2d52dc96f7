//! `glimpse kms create|list|show|enable|disable|schedule-deletion|cancel-deletion`: the
//! region's key manager (docs/kms.md) from the command line, over HTTP with the cloud of
//! clouds.yaml (see [`crate::os_cli`]), like `glimpse jobs`. It finds the `kms` endpoint of
//! the cloud's region in the token's catalog and calls `…/v1.0/{project}/kms/<action>`.
//! Stateless: nothing is written locally.

use clap::{Args, Subcommand};
use glimpse_client::Kms;
use glimpse_types::kms::{KeyDetails, state_word};

pub use crate::os_cli::CloudArgs;
use crate::os_cli::{Cloud, field_table, list_table, login};

/// `glimpse kms …`.
#[derive(Args, Debug, Clone)]
pub struct KmsArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: KmsCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum KmsCommand {
    /// Create a key (enabled) in the cloud's project; prints its id.
    Create {
        alias: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the project's keys.
    List {
        /// Only keys in this state (2 enabled, 3 disabled, 4 pending deletion).
        #[arg(long)]
        state: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show { key_id: String },
    /// Enable a disabled key.
    Enable { key_id: String },
    /// Disable a key: images encrypted with it can no longer be read or copied.
    Disable { key_id: String },
    /// Schedule the deletion of a key in `--days` days (7–1096).
    ScheduleDeletion {
        key_id: String,
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Cancel a scheduled deletion (the key comes back disabled).
    CancelDeletion { key_id: String },
}

/// The KMS of the cloud's region, logged in with the cloud's password.
pub async fn connect(cloud: &Cloud, region: Option<&str>) -> anyhow::Result<Kms> {
    let l = login(cloud).await?;
    let url = l.service_url(cloud, region, "kms")?;
    Ok(Kms::new(l.http.clone(), &url, l.project_id(), l.token()))
}

/// The key table of `list`.
pub fn keys_table(details: &[KeyDetails]) -> String {
    list_table(&["ID", "Alias", "State"], details, |k| {
        vec![
            k.key_id.clone(),
            k.key_alias.clone(),
            state_word(&k.key_state),
        ]
    })
}

/// The field table of `show`, in the API's (alphabetical) field order.
fn key_table(k: &KeyDetails) -> String {
    let KeyDetails {
        creation_date,
        default_key_flag,
        domain_id,
        expiration_time,
        key_alias,
        key_description,
        key_id,
        key_rotation_enabled,
        key_spec,
        key_state,
        key_type,
        key_usage,
        origin,
        realm,
        scheduled_deletion_date,
        sys_enterprise_project_id,
    } = k;
    let key_state = state_word(key_state);
    field_table([
        ("creation_date", creation_date),
        ("default_key_flag", default_key_flag),
        ("domain_id", domain_id),
        ("expiration_time", expiration_time),
        ("key_alias", key_alias),
        ("key_description", key_description),
        ("key_id", key_id),
        ("key_rotation_enabled", key_rotation_enabled),
        ("key_spec", key_spec),
        ("key_state", &key_state),
        ("key_type", key_type),
        ("key_usage", key_usage),
        ("origin", origin),
        ("realm", realm),
        ("scheduled_deletion_date", scheduled_deletion_date),
        ("sys_enterprise_project_id", sys_enterprise_project_id),
    ])
}

/// Runs one `glimpse kms` command.
pub async fn run(args: KmsArgs) -> anyhow::Result<()> {
    let cloud = args.cloud.cloud()?;
    let s = connect(&cloud, args.cloud.os_region_name.as_deref()).await?;
    match args.command {
        KmsCommand::Create { alias, description } => {
            let key = s.create(&alias, &description).await?;
            println!("{}", key.key_id);
        }
        KmsCommand::List { state, json } => {
            let list = s.list(state.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", keys_table(&list.key_details));
            }
        }
        KmsCommand::Show { key_id } => {
            let key = s.describe(&key_id).await?;
            print!("{}", key_table(&key));
        }
        KmsCommand::Enable { key_id } => {
            s.set_enabled(&key_id, true).await?;
            println!("Key {key_id} enabled.");
        }
        KmsCommand::Disable { key_id } => {
            s.set_enabled(&key_id, false).await?;
            println!("Key {key_id} disabled.");
        }
        KmsCommand::ScheduleDeletion { key_id, days } => {
            s.schedule_deletion(&key_id, days).await?;
            println!("Key {key_id} will be deleted in {days} days.");
        }
        KmsCommand::CancelDeletion { key_id } => {
            s.cancel_deletion(&key_id).await?;
            println!("Deletion of key {key_id} canceled; the key is disabled.");
        }
    }
    Ok(())
}
