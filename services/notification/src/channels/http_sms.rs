//! A province's own SMS gateway (政务短信平台) over HTTP: the URL, method,
//! body format and fields come from configuration, each field a text with
//! `{phone}`, `{content}`, `{id}` and `{sign_name}` in it; success is a 2xx
//! answer and, when `success_pointer` is set, the value there.

use std::collections::HashMap;

use super::{
    AddressKind, Channel, ChannelConfig, Handover, Outgoing, Secret, SendError, excerpt,
    limit::PerMinute,
};

pub struct HttpSms {
    name: String,
    endpoint: String,
    get: bool,
    form: bool,
    fields: Vec<(String, String)>,
    headers: Vec<(String, Secret)>,
    sign_name: String,
    success_pointer: String,
    success_value: String,
    permanent_values: Vec<String>,
    limit: PerMinute,
    http: reqwest::Client,
}

const PLACES: &[&str] = &["{phone}", "{content}", "{id}", "{sign_name}"];

impl HttpSms {
    pub fn new(name: &str, c: &ChannelConfig, http: reqwest::Client) -> Result<Self, String> {
        ChannelConfig::required(name, "endpoint", &c.endpoint)?;
        let method = c.method.trim().to_ascii_uppercase();
        if !matches!(method.as_str(), "" | "POST" | "GET") {
            return Err(format!(
                "{}: must be POST or GET",
                ChannelConfig::key(name, "method")
            ));
        }
        let body = c.body.trim();
        if !matches!(body, "" | "json" | "form") {
            return Err(format!(
                "{}: must be json or form",
                ChannelConfig::key(name, "body")
            ));
        }
        if c.fields.is_empty() || !c.fields.values().any(|v| v.contains("{phone}")) {
            return Err(format!(
                "{}: must name the fields of the request, one with {{phone}}",
                ChannelConfig::key(name, "fields")
            ));
        }
        for (field, text) in &c.fields {
            let mut rest = text.as_str();
            while let Some(start) = rest.find('{') {
                let end = rest[start..]
                    .find('}')
                    .map_or(rest.len(), |e| start + e + 1);
                let place = &rest[start..end];
                if !PLACES.contains(&place) {
                    return Err(format!(
                        "{}: unknown placeholder {place} (known: {})",
                        ChannelConfig::key(name, &format!("fields.{field}")),
                        PLACES.join(" ")
                    ));
                }
                rest = &rest[end..];
            }
        }
        let mut headers = Vec::new();
        for (h, v) in &c.headers {
            headers.push((
                h.clone(),
                v.resolve(&ChannelConfig::key(name, &format!("headers.{h}")))?,
            ));
        }
        let mut fields: Vec<(String, String)> = c
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.sort();
        Ok(Self {
            name: name.to_owned(),
            endpoint: c.endpoint_or(name, "")?,
            get: method == "GET",
            form: body == "form",
            fields,
            headers,
            sign_name: c.sign_name.trim().to_owned(),
            success_pointer: c.success_pointer.trim().to_owned(),
            success_value: c.success_value.trim().to_owned(),
            permanent_values: c.permanent_values.clone(),
            limit: PerMinute::new(c.per_minute),
            http,
        })
    }

    fn fill(&self, text: &str, m: &Outgoing<'_>) -> String {
        text.replace("{phone}", m.to)
            .replace("{id}", &m.id.simple().to_string())
            .replace("{sign_name}", m.sign_name.unwrap_or(&self.sign_name))
            .replace("{content}", m.body)
    }
}

#[async_trait::async_trait]
impl Channel for HttpSms {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> AddressKind {
        AddressKind::Phone
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        self.limit
            .take(&self.name, 1)
            .map_err(|after| SendError::Deferred { after })?;
        let values: HashMap<&str, String> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), self.fill(v, m)))
            .collect();
        let mut req = if self.get {
            self.http.get(&self.endpoint).query(&values)
        } else if self.form {
            self.http.post(&self.endpoint).form(&values)
        } else {
            self.http.post(&self.endpoint).json(&values)
        };
        for (h, v) in &self.headers {
            req = req.header(h, v.expose());
        }
        let resp = req.send().await.map_err(|e| SendError::transport(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| SendError::transport(&e))?;
        if !status.is_success() {
            return Err(super::by_status(status, &text));
        }
        if self.success_pointer.is_empty() {
            return Ok(Handover {
                provider_id: m.id.simple().to_string(),
                answer: excerpt(&text),
            });
        }
        let answer: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            SendError::retry(format!("gateway answered no JSON: {}", excerpt(&text)))
        })?;
        let value = match answer.pointer(&self.success_pointer) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        if value == self.success_value {
            return Ok(Handover {
                provider_id: m.id.simple().to_string(),
                answer: excerpt(&text),
            });
        }
        let reason = format!(
            "短信网关 {}={value}: {}",
            self.success_pointer,
            excerpt(&text)
        );
        if self.permanent_values.contains(&value) {
            Err(SendError::permanent(reason))
        } else {
            Err(SendError::retry(reason))
        }
    }
}
