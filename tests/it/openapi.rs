//! The OpenAPI document (`openapi.yaml`) against the router: every route served is documented and
//! every documented operation is served; chat-local serves the document and its reference page.

use std::collections::BTreeSet;

use chat_functions::routes::ROUTES;
use chat_tests::{Backend, BackendKind};
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

fn document() -> Value {
    serde_json::from_str(chat_functions::local::openapi_json().expect("openapi.yaml parses")).expect("JSON")
}

#[test]
fn the_document_names_exactly_the_routes_the_router_serves() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
    let served: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not in openapi.yaml: {undocumented:?}");
    assert!(unserved.is_empty(), "in openapi.yaml but not served: {unserved:?}");
}

#[test]
fn every_operation_documents_its_path_parameters_and_failures() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let segments: BTreeSet<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(item["parameters"].as_array().into_iter().flatten())
                .map(|p| resolve(&doc, p))
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
            assert_eq!(declared, segments, "{method} {path}: path parameters");
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: responses"));
            assert!(responses.contains_key("200"), "{method} {path}: no 200");
            if path != "/admin" {
                assert!(responses.contains_key("400") || responses.contains_key("401"), "{method} {path}: no failure");
            }
        }
    }
}

/// Follows a local `$ref`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
        Some(pointer) => doc.pointer(&format!("/{pointer}")).unwrap_or(value),
        None => value,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_local_serves_the_document_and_a_self_contained_reference_page() {
    let b = Backend::new(BackendKind::Embedded).await;
    let addr = b.serve();
    let client = reqwest_like::Client;
    let (status, headers, body) = client.get(&addr, "/openapi.json").await;
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: application/json"), "{headers}");
    assert_eq!(serde_json::from_str::<Value>(&body).expect("JSON"), document());
    let (status, headers, body) = client.get(&addr, "/openapi.yaml").await;
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: application/yaml"), "{headers}");
    assert_eq!(body, chat_functions::local::OPENAPI_YAML);
    let (status, headers, page) = client.get(&addr, "/docs").await;
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/html"), "{headers}");
    let csp = headers.lines().find(|l| l.starts_with("content-security-policy:")).expect("a CSP");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(page.contains("/openapi.json"), "the page renders the document");
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import"] {
        assert!(!page.contains(external), "the page loads nothing from elsewhere ({external})");
    }
}

/// A minimal HTTP/1.1 GET over a TCP socket: `(status, lower-cased headers, body)`.
mod reqwest_like {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client;

    impl Client {
        pub async fn get(&self, addr: &str, path: &str) -> (u16, String, String) {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read");
            let text = String::from_utf8(raw).expect("UTF-8");
            let (head, body) = text.split_once("\r\n\r\n").expect("head");
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
            (status, head.to_ascii_lowercase(), body.to_owned())
        }
    }
}
