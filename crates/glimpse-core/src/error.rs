//! The one domain error type. Every service returns it; the HTTP edge (glimpse-api) maps each
//! kind to a status code and renders it in the dialect of the API that was called.

use std::fmt;

/// Result alias for domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    UnsupportedMedia,
    RangeNotSatisfiable,
    Unavailable,
    Internal,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::TooLarge => 413,
            Kind::UnsupportedMedia => 415,
            Kind::RangeNotSatisfiable => 416,
            Kind::Unavailable => 503,
            Kind::Internal => 500,
        }
    }
}

/// A domain error: a kind and a message meant for the API caller. Internal errors keep their
/// cause for the log and show the caller only a generic message.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// Dialect-specific detail, e.g. an IMS error code (`IMG.0001`).
    pub code: Option<&'static str>,
    /// Seconds after which a retry may succeed (`Retry-After` on a 503).
    pub retry_after: Option<u64>,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            code: None,
            retry_after: None,
        }
    }
    pub fn with_code(mut self, code: &'static str) -> Error {
        self.code = Some(code);
        self
    }
    pub fn retry_after(mut self, seconds: u64) -> Error {
        self.retry_after = Some(seconds);
        self
    }
    /// An unexpected failure: logged with its cause, shown to the caller without it.
    pub fn internal(cause: impl fmt::Display) -> Error {
        tracing::error!(error = %cause, "internal error");
        Error::new(
            Kind::Internal,
            "The server has either erred or is incapable of performing the requested operation.",
        )
    }
}

/// `Error::bad_request(message)` and the like: one constructor per kind the domain raises.
macro_rules! kind_constructors {
    ($($name:ident => $kind:ident),* $(,)?) => {
        impl Error {
            $(pub fn $name(m: impl Into<String>) -> Error {
                Error::new(Kind::$kind, m)
            })*
        }
    };
}

kind_constructors! {
    bad_request => BadRequest,
    unauthorized => Unauthorized,
    forbidden => Forbidden,
    not_found => NotFound,
    conflict => Conflict,
    too_large => TooLarge,
    unsupported_media => UnsupportedMedia,
    unavailable => Unavailable,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.status())
    }
}

impl std::error::Error for Error {}

/// Seconds a client is told to wait (`Retry-After`) when the database or the blob store cannot
/// be reached.
pub(crate) const BACKEND_RETRY_AFTER: u64 = 5;

/// A database error is a 503 (with `Retry-After`) when the server cannot be reached or is going
/// away (a restart, a failover: the statement itself was fine), else a 500.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        if db_unreachable(&e) {
            tracing::warn!(error = %e, "database unreachable");
            return Error::unavailable("The database is unavailable. Retry later.")
                .retry_after(BACKEND_RETRY_AFTER);
        }
        Error::internal(format!("database: {e}"))
    }
}

/// Whether `e` says the database cannot be reached now rather than that a statement failed:
/// the connection broke or was refused (I/O, TLS), no connection came free in time, the pool is
/// closing, or PostgreSQL said so (SQLSTATE class 08, connection exception, or 57P, the
/// server shutting down, crashed or still starting up).
pub fn db_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// A blob store error: a missing blob or a blob that fails its checks is a 500; a store that
/// cannot be reached, or fails after its retries, a 503 with `Retry-After`.
impl From<glimpse_store::StoreError> for Error {
    fn from(e: glimpse_store::StoreError) -> Error {
        use glimpse_store::StoreError;
        match e {
            StoreError::NotFound(k) => {
                Error::internal(format!("blob {k} is missing from the store"))
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "blob store unavailable");
                Error::unavailable("The image store is unavailable. Retry later.")
                    .retry_after(BACKEND_RETRY_AFTER)
            }
            e => Error::internal(format!("blob store: {e}")),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::internal(format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_store::StoreError;

    /// A backend that is away is a 503 with `Retry-After`; anything else stays a 500.
    #[test]
    fn backends_away_are_503_and_the_rest_500() {
        let away = [
            Error::from(sqlx::Error::PoolTimedOut),
            Error::from(sqlx::Error::PoolClosed),
            Error::from(sqlx::Error::Io(std::io::Error::other("reset"))),
            Error::from(StoreError::Io(std::io::Error::other("refused"))),
        ];
        for e in away {
            assert_eq!(e.kind, Kind::Unavailable, "{e:?}");
            assert_eq!(e.retry_after, Some(BACKEND_RETRY_AFTER), "{e:?}");
        }
        let broken = [
            Error::from(sqlx::Error::RowNotFound),
            Error::from(StoreError::NotFound("blobs/x".into())),
            Error::from(StoreError::Refused("HTTP 403".into())),
        ];
        for e in broken {
            assert_eq!(e.kind, Kind::Internal, "{e:?}");
            assert_eq!(e.retry_after, None, "{e:?}");
        }
    }
}
