//! The typed `POST /v3/auth/tokens` request: who authenticates (password or token) and the
//! scope asked for. The Keystone body is read into it at the edge (`glimpse-api`,
//! `identity_v3::auth_request`).

use super::model::DomainRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    Password {
        user: UserRef,
        password: String,
    },
    /// Rescoping: a valid token stands in for the password.
    Token {
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope asked: the user's default project if it can be used, else an unscoped token.
    Default,
    /// `"scope": "unscoped"`: always unscoped.
    Unscoped,
    Project(ProjectRef),
    /// A scope Glimpse does not issue (domain, system, trust): authentication fails (401).
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub method: AuthMethod,
    pub scope: Scope,
}
