//! [`ServiceInstance`]: what a server registers, stored as Curator-compatible JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A server's latest load report (see [`crate::balancing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// The load (e.g. active requests or connections); lower is less loaded.
    pub value: u64,
    /// Report number, +1 per report of this registration.
    pub seq: u64,
    /// Publisher's wall clock at the report, ms since the epoch (informational: staleness
    /// is judged on the reader's clock, see [`crate::balancing`]).
    pub reported_at_ms: u64,
}

/// One instance of a service (Curator's `ServiceInstance` fields, plus `load`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance {
    /// Service name.
    pub name: String,
    /// Instance id, unique within the service.
    pub id: String,
    /// Host name or address.
    pub address: String,
    /// Port.
    pub port: Option<u16>,
    /// TLS port.
    #[serde(default)]
    pub ssl_port: Option<u16>,
    /// Free-form payload.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// Registration time, ms since the epoch.
    #[serde(rename = "registrationTimeUTC", default)]
    pub registration_time_utc: u64,
    /// Curator's service type ("DYNAMIC" for ephemeral registrations).
    #[serde(default = "dynamic")]
    pub service_type: String,
    /// Curator's URI template.
    #[serde(default)]
    pub uri_spec: Option<serde_json::Value>,
    /// The latest load report, if the server publishes load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadReport>,
    /// Whether the instance is in rotation (Curator's `enabled`, CURATOR-275): a
    /// registered but disabled instance stays listed and is skipped by
    /// [`crate::balancing::ServiceProvider`]. Absent in older JSON: enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn dynamic() -> String {
    "DYNAMIC".to_owned()
}

fn yes() -> bool {
    true
}

/// Wall clock in ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ServiceInstance {
    /// A new instance of `name` at `address:port`.
    pub fn new(name: &str, id: &str, address: &str, port: u16) -> Self {
        ServiceInstance {
            name: name.to_owned(),
            id: id.to_owned(),
            address: address.to_owned(),
            port: Some(port),
            ssl_port: None,
            payload: None,
            registration_time_utc: now_ms(),
            service_type: dynamic(),
            uri_spec: None,
            load: None,
            enabled: true,
        }
    }

    /// With a payload.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// `address:port`.
    pub fn endpoint(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.address, p),
            None => self.address.clone(),
        }
    }

    /// The JSON stored in the node.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Encode(e.to_string()))
    }

    /// Parses node data.
    pub fn from_json(path: &str, data: &[u8]) -> Result<Self> {
        serde_json::from_slice(data).map_err(|e| Error::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_roundtrip_and_curator_fields() {
        let mut i = ServiceInstance::new("api", "a1", "10.0.0.1", 8080);
        i.load = Some(LoadReport {
            value: 3,
            seq: 1,
            reported_at_ms: 5,
        });
        let j = i.to_json().unwrap();
        let text = String::from_utf8(j.clone()).unwrap();
        assert!(text.contains("\"registrationTimeUTC\""));
        assert!(text.contains("\"serviceType\":\"DYNAMIC\""));
        assert_eq!(ServiceInstance::from_json("/p", &j).unwrap(), i);
        // Curator's own JSON (no load) parses.
        let curator = br#"{"name":"api","id":"x","address":"h","port":1,"sslPort":null,"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}"#;
        let c = ServiceInstance::from_json("/p", curator).unwrap();
        assert_eq!(c.load, None);
        assert!(c.enabled, "no `enabled` key: in rotation");
        let off = br#"{"name":"api","id":"x","address":"h","port":1,"registrationTimeUTC":1,"serviceType":"DYNAMIC","enabled":false}"#;
        assert!(!ServiceInstance::from_json("/p", off).unwrap().enabled);
        assert!(text.contains("\"enabled\":true"));
        assert!(ServiceInstance::from_json("/p", b"{").is_err());
    }
}
