//! The OpenAPI document: served to anyone, naming every route the service
//! answers and no other, each behind the bearer scheme but the open two.

use std::collections::BTreeSet;

use crate::matrix::ROUTES;
use crate::Server;

/// Routes open to all.
const OPEN: [(&str, &str); 3] = [
    ("GET", "/healthz"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/d/{token}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_every_route_and_only_routes_that_answer() {
    let server = Server::start().await;
    let response = server
        .client
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            let open = OPEN.contains(&(method.as_str(), path.as_str()));
            assert_eq!(secured, !open, "{method} {path}: {operation}");
            documented.insert((method, path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(OPEN.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .collect();
    assert_eq!(documented, served);

    // Every documented route answers: never the fallback's "no route".
    for (method, path) in &documented {
        let url = server.url(&path.replace("{id}", "1"));
        let request = match method.as_str() {
            "POST" => server.client.post(url),
            _ => server.client.get(url),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("no route"),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
    server.stop().await;
}
