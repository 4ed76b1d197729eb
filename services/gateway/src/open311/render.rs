//! The spec's documents and their two spellings: a [`Node`] tree written as
//! JSON or as XML (items of a list named by the list), with the answer's
//! content type. Errors are rendered here too.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use jiesu_proto::{
    intake::{Category, PublicRequest},
    time::from_timestamp,
};
use serde_json::{Value, json};

use super::{CHANGESET, Format, Open311Error, SPECIFICATION};

/// A document rendered as JSON or XML.
#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    /// A list whose XML items are called by the given name.
    List(&'static str, Vec<Node>),
    Obj(Vec<(&'static str, Node)>),
}

impl Node {
    pub fn obj<const N: usize>(fields: [(&'static str, Node); N]) -> Node {
        Node::Obj(fields.into())
    }

    pub fn opt_str(s: &str) -> Node {
        if s.is_empty() {
            Node::Null
        } else {
            Node::Str(s.to_owned())
        }
    }

    fn opt_num(v: Option<f64>) -> Node {
        v.map(Node::Num).unwrap_or(Node::Null)
    }

    fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(n) => json!(n),
            Node::Num(n) => json!(n),
            Node::Str(s) => Value::String(s.clone()),
            Node::List(_, items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }

    fn write_xml(&self, name: &str, out: &mut String) {
        match self {
            Node::Null => {
                out.push('<');
                out.push_str(name);
                out.push_str("/>");
            }
            Node::Bool(b) => element(out, name, if *b { "true" } else { "false" }),
            Node::Int(n) => element(out, name, &n.to_string()),
            Node::Num(n) => element(out, name, &n.to_string()),
            Node::Str(s) => element(out, name, &escape(s)),
            Node::List(item, items) => {
                out.push_str(&format!("<{name}>"));
                for i in items {
                    i.write_xml(item, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            Node::Obj(fields) => {
                out.push_str(&format!("<{name}>"));
                for (k, v) in fields {
                    v.write_xml(k, out);
                }
                out.push_str(&format!("</{name}>"));
            }
        }
    }
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!("<{name}>{text}</{name}>"));
}

/// XML 1.0 text: the five entities escaped, characters XML cannot carry
/// dropped. Safe as HTML text and attribute values too.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `doc` as the answer, its XML root element called `root`.
pub fn render(format: Format, root: &str, doc: Node, status: StatusCode) -> Response {
    match format {
        Format::Json => {
            let body = doc.to_json().to_string();
            (
                status,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Format::Xml => {
            let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            doc.write_xml(root, &mut body);
            (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                body,
            )
                .into_response()
        }
    }
}

/// A successful answer: the list `service_requests` of `request` items.
pub fn service_requests(format: Format, items: Vec<Node>) -> Response {
    render(
        format,
        "service_requests",
        Node::List("request", items),
        StatusCode::OK,
    )
}

impl IntoResponse for Open311Error {
    fn into_response(self) -> Response {
        // The description in the caller's language, as the API's errors.
        let lang = crate::error::lang();
        let doc = Node::List(
            "error",
            vec![Node::obj([
                ("code", Node::Int(i64::from(self.status.as_u16()))),
                (
                    "description",
                    Node::Str(self.description.get(lang).to_owned()),
                ),
            ])],
        );
        let mut resp = render(self.format, "errors", doc, self.status);
        crate::error::mark_language(&mut resp, lang);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// Datetimes in China time (+08:00), as the spec's examples write them.
fn datetime(at: Option<DateTime<Utc>>) -> Node {
    at.map(|t| Node::Str(jiesu_common::time::iso_china(t)))
        .unwrap_or(Node::Null)
}

/// The discovery document of the endpoint at `url`.
pub fn discovery(url: String) -> Node {
    Node::obj([
        ("changeset", Node::Str(CHANGESET.into())),
        ("contact", Node::Str("12345政务服务便民热线".into())),
        (
            "key_service",
            Node::Str("api_key 由本区县管理员在“渠道管理”中登记 Open311 渠道后签发".into()),
        ),
        (
            "endpoints",
            Node::List(
                "endpoint",
                vec![Node::obj([
                    ("specification", Node::Str(SPECIFICATION.into())),
                    ("url", Node::Str(url)),
                    ("changeset", Node::Str(CHANGESET.into())),
                    ("type", Node::Str("production".into())),
                    (
                        "formats",
                        Node::List(
                            "format",
                            vec![
                                Node::Str("text/xml".into()),
                                Node::Str("application/json".into()),
                            ],
                        ),
                    ),
                ])],
            ),
        ),
    ])
}

/// One entry of the service list; `group` is its parent category's name.
pub fn service(c: &Category, group: Option<&String>) -> Node {
    Node::obj([
        ("service_code", Node::Str(c.code.clone())),
        ("service_name", Node::Str(c.name.clone())),
        ("description", Node::opt_str(&c.description)),
        ("metadata", Node::Bool(!c.attributes.is_empty())),
        ("type", Node::Str("realtime".into())),
        ("keywords", Node::opt_str(&c.keywords)),
        (
            "group",
            group.map(|g| Node::Str(g.clone())).unwrap_or(Node::Null),
        ),
    ])
}

/// A service definition: the category's questions, in their order.
pub fn service_definition(service: &Category) -> Node {
    let mut attributes = service.attributes.clone();
    attributes.sort_by_key(|a| a.order);
    let attrs = attributes
        .iter()
        .map(|a| {
            Node::obj([
                ("variable", Node::Bool(true)),
                ("code", Node::Str(a.code.clone())),
                ("datatype", Node::Str(a.datatype.clone())),
                ("required", Node::Bool(a.required)),
                (
                    "datatype_description",
                    Node::opt_str(&a.datatype_description),
                ),
                ("order", Node::Int(i64::from(a.order))),
                ("description", Node::Str(a.description.clone())),
                (
                    "values",
                    Node::List(
                        "value",
                        a.values
                            .iter()
                            .map(|v| {
                                Node::obj([
                                    ("key", Node::Str(v.key.clone())),
                                    ("name", Node::Str(v.name.clone())),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    Node::obj([
        ("service_code", Node::Str(service.code.clone())),
        ("attributes", Node::List("attribute", attrs)),
    ])
}

/// A request as anyone may see it: no personal data.
pub fn request(r: &PublicRequest) -> Node {
    Node::obj([
        ("service_request_id", Node::Str(r.tracking_no.clone())),
        ("status", Node::Str(r.status.clone())),
        ("status_notes", Node::opt_str(&r.status_notes)),
        ("service_name", Node::opt_str(&r.service_name)),
        ("service_code", Node::Str(r.service_code.clone())),
        ("description", Node::opt_str(&r.description)),
        ("agency_responsible", Node::Null),
        ("service_notice", Node::Null),
        (
            "requested_datetime",
            datetime(r.requested_at.as_ref().and_then(from_timestamp)),
        ),
        (
            "updated_datetime",
            datetime(r.updated_at.as_ref().and_then(from_timestamp)),
        ),
        ("expected_datetime", Node::Null),
        ("address", Node::opt_str(&r.address)),
        ("address_id", Node::Null),
        ("zipcode", Node::Null),
        ("lat", Node::opt_num(r.lat)),
        ("long", Node::opt_num(r.lon)),
        ("media_url", Node::opt_str(&r.media_url)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_writes_nulls() {
        let doc = Node::List(
            "request",
            vec![Node::obj([
                ("a", Node::Str("<b> & \"c\" '\u{1}'".into())),
                ("n", Node::Null),
                ("x", Node::Num(36.5)),
            ])],
        );
        let mut out = String::new();
        doc.write_xml("service_requests", &mut out);
        assert_eq!(
            out,
            "<service_requests><request><a>&lt;b&gt; &amp; &quot;c&quot; &apos;&apos;</a><n/><x>36.5</x></request></service_requests>"
        );
        assert_eq!(
            doc.to_json(),
            json!([{"a": "<b> & \"c\" '\u{1}'", "n": null, "x": 36.5}])
        );
    }
}
