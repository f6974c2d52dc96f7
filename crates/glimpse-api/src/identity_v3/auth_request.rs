//! Parsing of a `POST /v3/auth/tokens` body into the domain's [`AuthRequest`]. Malformed input
//! (bad types, missing `identity`/`methods`/`password`) is a 400; methods and scopes Glimpse
//! does not offer (totp, application credentials, domain or system scope, trusts) are a 401, as
//! Keystone answers when it cannot authenticate. Pure parsing: nothing to recover on a crash.

use glimpse_core::identity::auth_request::{AuthMethod, AuthRequest, ProjectRef, Scope, UserRef};
use glimpse_core::identity::model::DomainRef;
use glimpse_core::{Error, Result};
use serde_json::{Map, Value};

fn malformed(what: &str) -> Error {
    Error::bad_request(format!(
        "Expecting to find {what} - the server could not comply with the request since it is \
         either malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

fn object<'a>(v: &'a Value, key: &str, ctx: &str) -> Result<&'a Map<String, Value>> {
    v.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| malformed(&format!("{key} in {ctx}")))
}

fn string(m: &Map<String, Value>, key: &str, ctx: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request(format!(
            "Invalid input for field '{ctx}.{key}': expected a string."
        ))),
    }
}

fn domain(m: &Map<String, Value>, ctx: &str) -> Result<DomainRef> {
    let d = match m.get("domain") {
        Some(Value::Object(d)) => d,
        _ => return Err(malformed(&format!("domain in {ctx}"))),
    };
    if let Some(id) = string(d, "id", "domain")? {
        return Ok(DomainRef::Id(id));
    }
    if let Some(name) = string(d, "name", "domain")? {
        return Ok(DomainRef::Name(name));
    }
    Err(malformed(&format!("id or name in {ctx}.domain")))
}

fn user_ref(u: &Map<String, Value>) -> Result<UserRef> {
    if let Some(id) = string(u, "id", "user")? {
        return Ok(UserRef::Id(id));
    }
    let name = string(u, "name", "user")?.ok_or_else(|| malformed("id or name in user"))?;
    Ok(UserRef::Name {
        name,
        domain: domain(u, "user")?,
    })
}

fn project_ref(p: &Map<String, Value>) -> Result<ProjectRef> {
    if let Some(id) = string(p, "id", "project")? {
        return Ok(ProjectRef::Id(id));
    }
    let name = string(p, "name", "project")?.ok_or_else(|| malformed("id or name in project"))?;
    Ok(ProjectRef::Name {
        name,
        domain: domain(p, "project")?,
    })
}

/// Reads a `POST /v3/auth/tokens` body.
pub fn parse(body: &Value) -> Result<AuthRequest> {
    let auth = body
        .get("auth")
        .filter(|a| a.is_object())
        .ok_or_else(|| malformed("auth in request body"))?;
    let identity = auth
        .get("identity")
        .filter(|a| a.is_object())
        .ok_or_else(|| malformed("identity in auth"))?;
    let methods = identity
        .get("methods")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("methods in identity"))?;
    let methods: Vec<&str> = methods
        .iter()
        .map(|m| {
            m.as_str().ok_or_else(|| {
                Error::bad_request("Invalid input for field 'identity.methods': strings expected.")
            })
        })
        .collect::<Result<_>>()?;
    if methods.is_empty() {
        return Err(Error::bad_request(
            "Invalid input for field 'identity.methods': at least one method is required.",
        ));
    }
    let method = if methods.contains(&"password") {
        let p = object(identity, "password", "identity")?;
        let u = p
            .get("user")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("user in password"))?;
        let password =
            string(u, "password", "user")?.ok_or_else(|| malformed("password in user"))?;
        AuthMethod::Password {
            user: user_ref(u)?,
            password,
        }
    } else if methods.contains(&"token") {
        let t = object(identity, "token", "identity")?;
        let id = string(t, "id", "token")?.ok_or_else(|| malformed("id in token"))?;
        AuthMethod::Token { id }
    } else {
        return Err(Error::unauthorized(
            "The request you have made requires authentication.",
        ));
    };
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => Scope::Default,
        Some(Value::String(s)) if s == "unscoped" => Scope::Unscoped,
        Some(Value::Object(s)) => {
            if let Some(p) = s.get("project") {
                let p = p
                    .as_object()
                    .ok_or_else(|| malformed("an object in scope.project"))?;
                Scope::Project(project_ref(p)?)
            } else if let Some(k) = s.keys().next() {
                Scope::Unsupported(k.clone())
            } else {
                Scope::Default
            }
        }
        Some(_) => return Err(malformed("an object in scope")),
    };
    Ok(AuthRequest { method, scope })
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_core::Kind;
    use serde_json::json;

    #[test]
    fn tempest_shape() {
        let r = parse(&json!({"auth":{"identity":{"methods":["password"],
            "password":{"user":{"domain":{"name":"Default"},"name":"m","password":"s"}}},
            "scope":{"project":{"domain":{"name":"Default"},"name":"p"}}}}))
        .unwrap();
        assert_eq!(
            r.method,
            AuthMethod::Password {
                user: UserRef::Name {
                    name: "m".into(),
                    domain: DomainRef::Name("Default".into())
                },
                password: "s".into()
            }
        );
        assert_eq!(
            r.scope,
            Scope::Project(ProjectRef::Name {
                name: "p".into(),
                domain: DomainRef::Name("Default".into())
            })
        );
    }

    #[test]
    fn token_and_ids() {
        let r = parse(&json!({"auth":{"identity":{"methods":["token"],
            "token":{"id":"abc"}},"scope":{"project":{"id":"p1"}}}}))
        .unwrap();
        assert_eq!(r.method, AuthMethod::Token { id: "abc".into() });
        assert_eq!(r.scope, Scope::Project(ProjectRef::Id("p1".into())));
    }

    #[test]
    fn malformed_is_400_unsupported_is_401() {
        for body in [
            json!({}),
            json!({"auth": 1}),
            json!({"auth": {}}),
            json!({"auth": {"identity": {}}}),
            json!({"auth": {"identity": {"methods": "password"}}}),
            json!({"auth": {"identity": {"methods": []}}}),
            json!({"auth": {"identity": {"methods": [1]}}}),
            json!({"auth": {"identity": {"methods": ["password"]}}}),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "a", "password": "b"}}}}}),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": 5, "password": "b"}}}}}),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "u"}}}}}),
            json!({"auth": {"identity": {"methods": ["token"], "token": {}}}}),
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}}, "scope": 3}}),
        ] {
            let e = parse(&body).unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest, "{body}");
        }
        let e = parse(&json!({"auth": {"identity": {"methods": ["totp"]}}})).unwrap_err();
        assert_eq!(e.kind, Kind::Unauthorized);
        let r = parse(&json!({"auth": {"identity": {"methods": ["token"],
            "token": {"id": "t"}}, "scope": {"domain": {"id": "default"}}}}))
        .unwrap();
        assert_eq!(r.scope, Scope::Unsupported("domain".into()));
    }
}
