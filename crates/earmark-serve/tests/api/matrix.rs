//! The authorisation matrix: every route, as every role and with every
//! kind of bad token.

use std::time::Duration;

use earmark::{permitted, Action, Role};

use crate::{assert_error, master, Server};

/// Every route behind a token, with what it asks to do. The OpenAPI test
/// checks that this list and the document agree (`/healthz` and the
/// document itself are open to all).
pub const ROUTES: [(&str, &str, Action); 16] = [
    ("GET", "/api/v1/recipients", Action::ReadRecipients),
    ("POST", "/api/v1/recipients", Action::ManageRecipients),
    (
        "POST",
        "/api/v1/recipients/import",
        Action::ManageRecipients,
    ),
    ("GET", "/api/v1/works", Action::ReadWorks),
    ("POST", "/api/v1/works", Action::AddWorks),
    ("GET", "/api/v1/works/{id}", Action::ReadWorks),
    ("POST", "/api/v1/works/{id}/marks", Action::Mark),
    ("GET", "/api/v1/marks/{id}", Action::Mark),
    ("POST", "/api/v1/traces", Action::Trace),
    ("GET", "/api/v1/traces/{id}", Action::Trace),
    ("POST", "/api/v1/works/{id}/deliveries", Action::Mark),
    ("GET", "/api/v1/links", Action::Mark),
    ("POST", "/api/v1/links/{id}/revoke", Action::Mark),
    ("GET", "/api/v1/downloads", Action::ReadAudit),
    ("GET", "/api/v1/audit", Action::ReadAudit),
    ("GET", "/api/v1/audit/verify", Action::ReadAudit),
];

/// A request to `path` (its `{id}` filled in), with a body the route takes.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    n: usize,
) -> reqwest::RequestBuilder {
    let path = path
        .replace("/works/{id}", "/works/1")
        .replace("/links/{id}", "/links/1")
        .replace("{id}", "0123456789abcdef0123456789abcdef");
    let url = server.url(&path);
    let master = std::fs::read(master()).unwrap();
    let mut request = match (method, path.as_str()) {
        ("POST", "/api/v1/recipients") => server
            .client
            .post(url)
            .json(&serde_json::json!({"name": format!("Recipient {n}")})),
        ("POST", "/api/v1/recipients/import") => server
            .client
            .post(url)
            .header("content-type", "text/csv")
            .body(format!("name\nImported {n}\n")),
        ("POST", "/api/v1/works/1/marks" | "/api/v1/works/1/deliveries") => server
            .client
            .post(url)
            .json(&serde_json::json!({"recipients": [1]})),
        ("POST", "/api/v1/links/1/revoke") => server.client.post(url),
        ("POST", _) => server.client.post(url).multipart(Server::form(master, &[])),
        _ => server.client.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_role_and_every_bad_token() {
    let server = Server::start().await;
    server
        .home
        .add_recipient("First", None, None)
        .await
        .unwrap();
    server
        .home
        .add_work(&master(), Some("Board meeting"))
        .await
        .unwrap();
    server
        .home
        .create_links(
            1,
            &earmark::Selection::Ids(vec![1]),
            earmark::Format::Wav,
            None,
            None,
        )
        .await
        .unwrap();
    let analyst = "analyst user";
    let expired = server
        .home
        .create_token(analyst, None, Some(Duration::ZERO))
        .await
        .unwrap();
    let revoked = server.home.create_token(analyst, None, None).await.unwrap();
    server.home.revoke_token(revoked.token.id).await.unwrap();

    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let headers = health.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    let mut n = 0;
    for (method, path, action) in ROUTES {
        for (role, token) in &server.tokens {
            n += 1;
            let response = request(&server, method, path, Some(token), n)
                .send()
                .await
                .unwrap();
            let what = format!("{method} {path} as {}", role.as_str());
            if !permitted(*role, action) {
                assert_error(response, 403, &what).await;
            } else if path.ends_with("/marks/{id}") || path.ends_with("/traces/{id}") {
                // Allowed, and told plainly that no such job exists.
                assert_error(response, 404, &what).await;
            } else {
                let status = response.status();
                assert!(
                    status.is_success(),
                    "{what}: {status} {}",
                    response.text().await.unwrap()
                );
            }
        }
        for (label, token) in [
            ("no token", None),
            ("a wrong token", Some("emk_0123")),
            ("an expired token", Some(expired.secret.as_str())),
            ("a revoked token", Some(revoked.secret.as_str())),
        ] {
            n += 1;
            let response = request(&server, method, path, token, n)
                .send()
                .await
                .unwrap();
            assert_error(response, 401, &format!("{method} {path} with {label}")).await;
        }
    }
    // Only what an admin asked was recorded, by them, and the chain holds.
    let names: Vec<String> = server
        .home
        .recipients()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let log = server.home.audit_log().await.unwrap();
    for entry in log.iter().filter(|e| e.action == "recipient").skip(1) {
        assert!(entry.detail.contains("\"by\":\"admin user\""), "{entry:?}");
    }
    assert!(server.home.audit_verify().await.unwrap().intact);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_errors_and_record_nothing() {
    let server = Server::start().await;
    let admin = server.token(Role::Admin).to_string();
    let client = &server.client;
    let cases = [
        (
            client
                .post(server.url("/api/v1/recipients"))
                .json(&serde_json::json!({"name": "   "})),
            422,
            "a blank name",
        ),
        (
            client
                .post(server.url("/api/v1/recipients"))
                .header("content-type", "application/json")
                .body("{\"name\": "),
            400,
            "a truncated JSON body",
        ),
        (
            client.get(server.url("/api/v1/nothing-here")),
            404,
            "an unknown route",
        ),
        (
            client.get(server.url("/api/v1/works/not-a-number")),
            400,
            "a work id that is not a number",
        ),
        (
            client.get(server.url("/api/v1/works/99")),
            404,
            "an unknown work",
        ),
        (
            client
                .post(server.url("/api/v1/works/99/marks"))
                .json(&serde_json::json!({"recipients": ["Nobody"]})),
            404,
            "marking an unknown work",
        ),
    ];
    for (request, status, what) in cases {
        let response = request.bearer_auth(&admin).send().await.unwrap();
        assert_error(response, status, what).await;
    }
    assert!(server.home.recipients().await.unwrap().is_empty());
    assert!(server.home.works().await.unwrap().is_empty());
    server.stop().await;
}
