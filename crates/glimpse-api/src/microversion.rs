//! OpenStack microversions, shared by Nova ([`COMPUTE`]) and Cinder ([`VOLUME`]): the
//! `OpenStack-API-Version: <service> X.Y` header (and Nova's legacy
//! `X-OpenStack-Nova-API-Version`), `latest`, 400 for a malformed version and 406 for one out of
//! range, and the headers echoed on the answer.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

/// A microversion `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Version(major, minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// One microversioned API.
#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// The service name in `OpenStack-API-Version`.
    pub service: &'static str,
    /// A service-specific header also read (after the standard one) and echoed.
    pub legacy_header: Option<&'static str>,
    /// The `Vary` header of the answer.
    pub vary: &'static str,
    /// The version of a request that asks for none, and the lowest served.
    pub min: Version,
    /// The highest served (`latest`).
    pub max: Version,
}

/// Nova (2.47: embedded flavor in server views; 2.45: createImage answers `{"image_id"}`;
/// 2.39: no Nova-side image metadata quota; 2.37: `networks` required; 2.36: the image proxy
/// answers 404).
pub const COMPUTE: Api = Api {
    service: "compute",
    legacy_header: Some("x-openstack-nova-api-version"),
    vary: "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    min: Version(2, 1),
    max: Version(2, 47),
};

/// Cinder v3 (3.1: `visibility` and `protected` on upload).
pub const VOLUME: Api = Api {
    service: "volume",
    legacy_header: None,
    vary: "OpenStack-API-Version",
    min: Version(3, 0),
    max: Version(3, 1),
};

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

impl Api {
    /// The version a request asks for ([`Api::min`] when it asks for none); 400 when
    /// malformed, 406 when out of range.
    pub fn requested(&self, headers: &HeaderMap) -> Result<Version, (StatusCode, String)> {
        let asked = values(headers, "openstack-api-version")
            .find_map(|v| {
                let mut parts = v.split_whitespace();
                (parts.next()?.eq_ignore_ascii_case(self.service))
                    .then(|| parts.next().map(str::to_string))?
            })
            .or_else(|| {
                let legacy = self.legacy_header?;
                values(headers, legacy).next().map(str::to_string)
            });
        let Some(asked) = asked else {
            return Ok(self.min);
        };
        if asked.eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let v = parse(&asked).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "API Version String {asked} is of invalid format. Must be of format \
                     MajorNum.MinorNum."
                ),
            )
        })?;
        if v < self.min || v > self.max {
            return Err((
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Version {v} is not supported by the API. Minimum is {} and maximum is {}.",
                    self.min, self.max
                ),
            ));
        }
        Ok(v)
    }

    /// Echoes the version served (`OpenStack-API-Version`, the legacy header, `Vary`).
    pub fn echo(&self, version: Version, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&format!("{} {version}", self.service)) {
            headers.insert("openstack-api-version", v);
        }
        if let Some(legacy) = self.legacy_header
            && let Ok(v) = HeaderValue::from_str(&version.to_string())
        {
            headers.insert(legacy, v);
        }
        headers.insert(header::VARY, HeaderValue::from_static(self.vary));
    }
}

/// `MajorNum.MinorNum`: digits only, no leading zero on the major number.
fn parse(asked: &str) -> Option<Version> {
    if !asked.chars().all(|c| c.is_ascii_digit() || c == '.')
        || (asked.starts_with('0') && !asked.starts_with("0."))
    {
        return None;
    }
    let (a, b) = asked.split_once('.')?;
    Some(Version(a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(api: Api, name: &str, value: &str) -> Result<Version, (StatusCode, String)> {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        api.requested(&h)
    }

    #[test]
    fn microversion_headers() {
        let c = |n, v| asked(COMPUTE, n, v);
        assert_eq!(COMPUTE.requested(&HeaderMap::new()), Ok(COMPUTE.min));
        assert_eq!(
            c("openstack-api-version", "compute 2.45"),
            Ok(Version(2, 45))
        );
        assert_eq!(
            c("openstack-api-version", "volume 3.1, compute 2.9"),
            Ok(Version(2, 9))
        );
        assert_eq!(c("openstack-api-version", "volume 3.1"), Ok(COMPUTE.min));
        assert_eq!(
            c("x-openstack-nova-api-version", "2.37"),
            Ok(Version(2, 37))
        );
        assert_eq!(
            c("openstack-api-version", "compute latest"),
            Ok(COMPUTE.max)
        );
        assert_eq!(
            c("openstack-api-version", "compute 2.48").unwrap_err().0,
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            c("openstack-api-version", "compute 2.0").unwrap_err().0,
            StatusCode::NOT_ACCEPTABLE
        );
        for bad in ["compute 2", "compute 2.x", "compute -2.1"] {
            assert_eq!(
                c("openstack-api-version", bad).unwrap_err().0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert!(Version(2, 10) > Version(2, 9));
    }

    #[test]
    fn volume_microversions() {
        let v = |s| asked(VOLUME, "openstack-api-version", s);
        assert_eq!(VOLUME.requested(&HeaderMap::new()), Ok(Version(3, 0)));
        assert_eq!(v("volume 3.1"), Ok(Version(3, 1)));
        assert_eq!(v("volume latest"), Ok(Version(3, 1)));
        assert_eq!(v("compute 2.9"), Ok(Version(3, 0)));
        assert_eq!(
            asked(VOLUME, "x-openstack-nova-api-version", "3.1"),
            Ok(Version(3, 0))
        );
        for bad in ["volume 3.x", "volume 03.1", "volume 3"] {
            assert_eq!(v(bad).unwrap_err().0, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(v("volume 3.2").unwrap_err().0, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(v("volume 2.0").unwrap_err().0, StatusCode::NOT_ACCEPTABLE);
    }
}
