//! The body of `os-volume_upload_image` (seed 002) read exactly as Cinder's JSON schema does
//! (`image_name` a string of 1–255 characters, `force` one of Cinder's boolean spellings,
//! `disk_format` from the seed's list (typed here), `container_format` from the seed's list; from 3.1
//! `visibility` and `protected`; nothing else) into the domain's [`UploadRequest`], and the
//! 202 answer rendered from its [`Accepted`]. Pure functions.

use glimpse_core::volumes::upload::{Accepted, UploadRequest};
use glimpse_core::{Error, Result};
use glimpse_formats::DiskFormat;
use glimpse_types::Visibility;
use serde_json::{Map, Value, json};

/// Disk formats an upload may ask for (the seed's four, Cinder's vhd and vhdx, and the seed's
/// iso which makes no image).
pub const DISK_FORMATS: [&str; 7] = ["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "iso"];
/// Container formats the seed lists.
pub const CONTAINER_FORMATS: [&str; 5] = ["bare", "ovf", "ami", "aki", "ari"];

/// Cinder's boolean spellings (`cinder/api/validation/parameter_types.py::boolean`).
const TRUE_WORDS: [&str; 12] = [
    "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
];
const FALSE_WORDS: [&str; 12] = [
    "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f",
];

fn invalid(field: &str, value: &Value, why: &str) -> Error {
    Error::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {}. {why}",
        python_repr(value)
    ))
}

/// A JSON value written as Python's repr, as Cinder's validation messages show it.
fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Cinder's strict boolean: JSON true/false or one of its spellings.
pub fn strict_bool(field: &str, v: &Value) -> Result<bool> {
    let why = || {
        invalid(
            field,
            v,
            &format!(
                "{} is not one of {}",
                python_repr(v),
                "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']"
            ),
        )
    };
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if TRUE_WORDS.contains(&s.as_str()) => Ok(true),
        Value::String(s) if FALSE_WORDS.contains(&s.as_str()) => Ok(false),
        _ => Err(why()),
    }
}

/// Reads the value of the `os-volume_upload_image` key. `v31`: the request's microversion is
/// 3.1 or later (v3 only), which allows `visibility` and `protected`.
pub fn parse(body: &Value, v31: bool) -> Result<UploadRequest> {
    let field = "os-volume_upload_image";
    let Some(obj) = body.as_object() else {
        return Err(invalid(
            field,
            body,
            &format!("{} is not of type 'object'", python_repr(body)),
        ));
    };
    let mut allowed = vec!["image_name", "force", "disk_format", "container_format"];
    if v31 {
        allowed.extend(["visibility", "protected"]);
    }
    let extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !extra.is_empty() {
        let list: Vec<String> = extra.iter().map(|k| format!("'{k}'")).collect();
        return Err(Error::bad_request(format!(
            "Additional properties are not allowed ({} {} unexpected)",
            list.join(", "),
            if extra.len() == 1 { "was" } else { "were" }
        )));
    }
    let name_field = format!("{field}/image_name");
    let image_name = match obj.get("image_name") {
        None => {
            return Err(Error::bad_request(format!(
                "Invalid input for field/attribute {field}. Value: {}. 'image_name' is a required property",
                python_repr(body)
            )));
        }
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < 1 {
                return Err(invalid(&name_field, &json!(s), "'' is too short"));
            }
            if n > 255 {
                return Err(invalid(
                    &name_field,
                    &json!(s),
                    &format!("'{s}' is too long"),
                ));
            }
            s.clone()
        }
        Some(other) => {
            return Err(invalid(
                &name_field,
                other,
                &format!("{} is not of type 'string'", python_repr(other)),
            ));
        }
    };
    let force = match obj.get("force") {
        None => false,
        Some(v) => strict_bool(&format!("{field}/force"), v)?,
    };
    let disk_format = match obj.get("disk_format") {
        None => DiskFormat::Raw,
        Some(v) => match v.as_str().filter(|s| DISK_FORMATS.contains(s)) {
            Some(s) => DiskFormat::parse(s).expect("every Cinder upload format is a disk format"),
            None => {
                return Err(invalid(
                    &format!("{field}/disk_format"),
                    v,
                    &format!("{} is not one of {DISK_FORMATS:?}", python_repr(v)),
                ));
            }
        },
    };
    let container_format = match obj.get("container_format") {
        None | Some(Value::Null) => "bare".to_string(),
        Some(Value::String(s)) if CONTAINER_FORMATS.contains(&s.as_str()) => s.clone(),
        Some(other) => {
            return Err(invalid(
                &format!("{field}/container_format"),
                other,
                &format!("{} is not one of {CONTAINER_FORMATS:?}", python_repr(other)),
            ));
        }
    };
    let visibility = match obj.get("visibility") {
        None if v31 => Some(Visibility::Private),
        None => None,
        Some(Value::String(s)) if Visibility::parse(s).is_some() => Visibility::parse(s),
        Some(other) => {
            return Err(invalid(
                &format!("{field}/visibility"),
                other,
                &format!(
                    "{} is not one of ['community', 'public', 'private', 'shared']",
                    python_repr(other)
                ),
            ));
        }
    };
    let protected = match obj.get("protected") {
        None if v31 => Some(false),
        None => None,
        Some(v) => Some(strict_bool(&format!("{field}/protected"), v)?),
    };
    Ok(UploadRequest {
        image_name,
        force,
        disk_format,
        container_format,
        visibility,
        protected,
    })
}

/// The seed's 202 body (`os-volume_upload_image` object), Cinder's fields in Cinder's order
/// of the sample; `protected`/`visibility` only from 3.1.
pub fn response(a: &Accepted) -> Value {
    let v = &a.volume;
    let mut m = Map::new();
    m.insert("container_format".into(), json!(a.request.container_format));
    m.insert("disk_format".into(), json!(a.request.disk_format.as_str()));
    m.insert("display_description".into(), json!(v.description));
    m.insert("id".into(), json!(v.id));
    m.insert("image_id".into(), json!(a.image_id));
    m.insert("image_name".into(), json!(a.request.image_name));
    if let Some(p) = a.request.protected {
        m.insert("protected".into(), json!(p));
    }
    m.insert("size".into(), json!(v.size_gb));
    m.insert("status".into(), json!(v.status.as_str()));
    m.insert("updated_at".into(), json!(v.updated_at.map(cinder_time)));
    if let Some(vis) = a.request.visibility {
        m.insert("visibility".into(), json!(vis.as_str()));
    }
    m.insert("volume_type".into(), json!(v.volume_type));
    Value::Object(m)
}

/// Cinder's time format: `yyyy-mm-ddThh:mm:ss.ssssss`, UTC, no zone.
pub fn cinder_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_bool_is_cinders_enum() {
        for t in [
            json!(true),
            json!("True"),
            json!("on"),
            json!("y"),
            json!("t"),
            json!("1"),
        ] {
            assert!(strict_bool("force", &t).unwrap(), "{t}");
        }
        for f in [
            json!(false),
            json!("OFF"),
            json!("No"),
            json!("f"),
            json!("0"),
        ] {
            assert!(!strict_bool("force", &f).unwrap(), "{f}");
        }
        for bad in [
            json!(1),
            json!(0),
            json!(null),
            json!("T"),
            json!("tRUE"),
            json!(" true"),
            json!(""),
        ] {
            assert!(strict_bool("force", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_defaults_and_versions() {
        let r = parse(&json!({"image_name": "n"}), false).unwrap();
        assert_eq!(
            (r.disk_format.as_str(), r.container_format.as_str(), r.force),
            ("raw", "bare", false)
        );
        assert_eq!((r.visibility, r.protected), (None, None));
        let r = parse(&json!({"image_name": "n"}), true).unwrap();
        assert_eq!(
            (r.visibility, r.protected),
            (Some(Visibility::Private), Some(false))
        );
        assert!(parse(&json!({"image_name": "n", "protected": true}), false).is_err());
        assert!(parse(&json!({"image_name": "n", "disk_format": "ploop"}), true).is_err());
        let e = parse(&json!({"image_name": null}), false).unwrap_err();
        assert!(
            e.message.contains("None is not of type 'string'"),
            "{}",
            e.message
        );
        assert!(parse(&json!({"image_name": "é".repeat(255)}), false).is_ok());
        assert!(parse(&json!({"image_name": "é".repeat(256)}), false).is_err());
    }

    #[test]
    fn cinder_time_has_six_digits_and_no_zone() {
        let t = chrono::DateTime::parse_from_rfc3339("2014-05-27T12:26:11Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(cinder_time(t), "2014-05-27T12:26:11.000000");
    }
}
