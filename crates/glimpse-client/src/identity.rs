//! The identity (Keystone v3) API: password login, token validation, and the project and
//! role reads the replicator makes with a token.

use glimpse_types::keystone::{
    Catalog, PasswordAuth, Project, ProjectBody, RoleAssignments, Token, TokenBody,
};
use reqwest::Client;

use crate::fault::{Fault, json, read_json, send};

/// The identity API at one `/v3` URL.
#[derive(Clone, Debug)]
pub struct Keystone {
    http: Client,
    /// The `/v3` URL, without a trailing slash.
    base: String,
}

/// A token and what identity said of it.
#[derive(Clone, Debug)]
pub struct Login {
    /// The `X-Subject-Token`.
    pub token: String,
    pub body: Token,
}

impl Login {
    pub fn catalog(&self) -> &Catalog {
        &self.body.catalog
    }

    /// The token's project id (empty for an unscoped token).
    pub fn project_id(&self) -> &str {
        self.body.project.as_ref().map_or("", |p| p.id.as_str())
    }
}

impl Keystone {
    /// `v3` is the identity's `/v3` URL (a trailing slash is fine).
    pub fn new(http: Client, v3: &str) -> Keystone {
        Keystone {
            http,
            base: v3.trim_end_matches('/').to_string(),
        }
    }

    /// The `/v3` URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `POST /v3/auth/tokens` with a password: the token and its body.
    pub async fn login(&self, auth: &PasswordAuth) -> Result<Login, Fault> {
        let what = "logging in";
        let rb = self
            .http
            .post(format!("{}/auth/tokens", self.base))
            .timeout(crate::META_TIMEOUT)
            .json(auth);
        let resp = send(rb, what).await?;
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Fault::Down(format!("{what}: identity answered without a token")))?;
        let body: TokenBody = read_json(resp, what).await?;
        Ok(Login {
            token,
            body: body.token,
        })
    }

    /// `GET /v3/auth/tokens`: what identity says of `subject`, asked with `auth`
    /// (`allow_expired`: also a token past its expiry, within Keystone's window).
    pub async fn validate(
        &self,
        auth: &str,
        subject: &str,
        allow_expired: bool,
    ) -> Result<Token, Fault> {
        let mut rb = self
            .http
            .get(format!("{}/auth/tokens", self.base))
            .header("x-auth-token", auth)
            .header("x-subject-token", subject);
        if allow_expired {
            rb = rb.query(&[("allow_expired", "1")]);
        }
        let body: TokenBody = json(rb, "validating a token").await?;
        Ok(body.token)
    }

    /// The calls made with `token`.
    pub fn with_token<'a>(&'a self, token: &'a str) -> WithToken<'a> {
        WithToken {
            keystone: self,
            token,
        }
    }
}

/// The identity API called with one token.
pub struct WithToken<'a> {
    keystone: &'a Keystone,
    token: &'a str,
}

impl WithToken<'_> {
    /// `GET /v3/projects/{id}`.
    pub async fn project(&self, id: &str) -> Result<Project, Fault> {
        let rb = self
            .keystone
            .http
            .get(format!("{}/projects/{id}", self.keystone.base))
            .header("x-auth-token", self.token);
        let body: ProjectBody = json(rb, "looking up the destination tenant").await?;
        Ok(body.project)
    }

    /// The names of the roles `user` holds on `project`, implied roles included
    /// (`GET /v3/role_assignments?effective&include_names`).
    pub async fn roles_on(&self, user: &str, project: &str) -> Result<Vec<String>, Fault> {
        let rb = self
            .keystone
            .http
            .get(format!("{}/role_assignments", self.keystone.base))
            .query(&[
                ("user.id", user),
                ("scope.project.id", project),
                ("effective", "true"),
                ("include_names", "true"),
            ])
            .header("x-auth-token", self.token);
        let body: RoleAssignments =
            json(rb, "reading the caller's roles in the destination tenant").await?;
        Ok(body
            .role_assignments
            .into_iter()
            .map(|a| a.role.name)
            .collect())
    }
}
