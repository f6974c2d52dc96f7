//! `glimpse kms create|list|show|enable|disable|schedule-deletion|cancel-deletion`: the
//! region's key manager (docs/kms.md) from the command line, over HTTP with the cloud of
//! clouds.yaml (see [`crate::os_cli`]), like `glimpse jobs`. It finds the `kms` endpoint of
//! the cloud's region in the token's catalog and calls `…/v1.0/{project}/kms/<action>`.
//! Stateless: nothing is written locally.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

pub use crate::os_cli::CloudArgs;
use crate::os_cli::{Cloud, login, table};

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

/// A logged-in client of one region's key manager.
pub struct KmsSession {
    http: reqwest::Client,
    token: String,
    /// `…/kms/v1.0/{project}/kms`.
    base: String,
}

impl KmsSession {
    pub async fn connect(cloud: &Cloud, region: Option<&str>) -> anyhow::Result<KmsSession> {
        let l = login(cloud).await?;
        let url = l.service_url(cloud, region, "kms")?;
        Ok(KmsSession {
            base: format!("{url}/v1.0/{}/kms", l.project_id),
            http: l.http,
            token: l.token,
        })
    }

    /// Calls one action; an error answer becomes an error with the API's message.
    pub async fn call(&self, action: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/{action}", self.base))
            .header("x-auth-token", &self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{status}: {} ({})",
                v["error"]["error_msg"].as_str().unwrap_or("no message"),
                v["error"]["error_code"].as_str().unwrap_or("?")
            );
        }
        Ok(v)
    }
}

fn state_word(s: &str) -> String {
    let w = match s {
        "2" => "enabled",
        "3" => "disabled",
        "4" => "pending deletion",
        _ => "unknown",
    };
    format!("{s} ({w})")
}

/// The key table of `list`.
pub fn keys_table(details: &[Value]) -> String {
    let rows: Vec<Vec<String>> = details
        .iter()
        .map(|k| {
            let s = |f: &str| k[f].as_str().unwrap_or("").to_string();
            vec![s("key_id"), s("key_alias"), state_word(&s("key_state"))]
        })
        .collect();
    table(&["ID", "Alias", "State"], &rows)
}

/// Runs one `glimpse kms` command.
pub async fn run(args: KmsArgs) -> anyhow::Result<()> {
    let cloud = args.cloud.cloud()?;
    let s = KmsSession::connect(&cloud, args.cloud.os_region_name.as_deref()).await?;
    let show = |v: &Value| {
        let k = &v["key_info"];
        let rows: Vec<Vec<String>> = k
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(f, v)| {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        vec![
                            f.clone(),
                            if f == "key_state" {
                                state_word(&text)
                            } else {
                                text
                            },
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        print!("{}", table(&["Field", "Value"], &rows));
    };
    match args.command {
        KmsCommand::Create { alias, description } => {
            let v = s
                .call(
                    "create-key",
                    json!({"key_alias": alias, "key_description": description}),
                )
                .await?;
            println!("{}", v["key_info"]["key_id"].as_str().unwrap_or(""));
        }
        KmsCommand::List { state, json } => {
            let mut body = json!({});
            if let Some(st) = state {
                body["key_state"] = json!(st);
            }
            let v = s.call("list-keys", body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!(
                    "{}",
                    keys_table(v["key_details"].as_array().map_or(&[][..], |a| a))
                );
            }
        }
        KmsCommand::Show { key_id } => {
            show(&s.call("describe-key", json!({"key_id": key_id})).await?);
        }
        KmsCommand::Enable { key_id } => {
            s.call("enable-key", json!({"key_id": key_id})).await?;
            println!("Key {key_id} enabled.");
        }
        KmsCommand::Disable { key_id } => {
            s.call("disable-key", json!({"key_id": key_id})).await?;
            println!("Key {key_id} disabled.");
        }
        KmsCommand::ScheduleDeletion { key_id, days } => {
            s.call(
                "schedule-key-deletion",
                json!({"key_id": key_id, "pending_days": days.to_string()}),
            )
            .await?;
            println!("Key {key_id} will be deleted in {days} days.");
        }
        KmsCommand::CancelDeletion { key_id } => {
            s.call("cancel-key-deletion", json!({"key_id": key_id}))
                .await?;
            println!("Deletion of key {key_id} canceled; the key is disabled.");
        }
    }
    Ok(())
}
