//! The typed inputs of the metadefs operations: namespaces, objects, properties and resource
//! type associations as the domain takes them. Glance's request documents are read into them
//! at the edge (`glimpse-api`, `image_v2::metadefs::input`).

use serde_json::{Map, Value};

/// A property definition as stored and shown: the known attributes of Glance's
/// `PropertyType` (`name` included when the request named it).
pub type PropertyDoc = Map<String, Value>;

/// `POST`/`PUT /v2/metadefs/namespaces[/{ns}]`.
#[derive(Debug, Clone, Default)]
pub struct NamespaceInput {
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// `true` for `public`; `None` when absent (create and update default to private).
    pub public: Option<bool>,
    pub protected: Option<bool>,
    pub owner: Option<String>,
    pub resource_type_associations: Vec<AssociationInput>,
    pub properties: Vec<(String, PropertyDoc)>,
    pub objects: Vec<ObjectInput>,
    pub tags: Vec<String>,
}

/// A resource type association (`POST .../resource_types`, or inside a namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssociationInput {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
}

/// An object: its name and its document (`description`, `required`, `properties`).
#[derive(Debug, Clone, Default)]
pub struct ObjectInput {
    pub name: String,
    pub doc: Map<String, Value>,
}
