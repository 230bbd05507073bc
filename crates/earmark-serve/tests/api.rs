//! The service on a real loopback socket, asked by a real HTTP client:
//! every route for every role and for every kind of bad token, the error
//! body, the request id and the security headers.

use std::time::Duration;

use earmark::{permitted, Action, Home, Role};

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
    home: Home,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    Home::init(&root).await.unwrap();
    let home = Home::open(&root).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(earmark_serve::serve(home.clone(), listener, async {
        let _ = stopped.await;
    }));
    Server {
        base,
        stop: Some(stop),
        task,
        _dir: dir,
        home,
    }
}

/// The routes, with what each asks to do.
const ROUTES: [(&str, &str, Action); 5] = [
    ("GET", "/api/v1/recipients", Action::ReadRecipients),
    ("POST", "/api/v1/recipients", Action::ManageRecipients),
    ("GET", "/api/v1/works", Action::ReadWorks),
    ("GET", "/api/v1/audit", Action::ReadAudit),
    ("GET", "/api/v1/audit/verify", Action::ReadAudit),
];

async fn call(
    client: &reqwest::Client,
    base: &str,
    (method, path): (&str, &str),
    token: Option<&str>,
    n: usize,
) -> reqwest::Response {
    let url = format!("{base}{path}");
    let mut request = match method {
        "POST" => client
            .post(url)
            .json(&serde_json::json!({"name": format!("Recipient {n}")})),
        _ => client.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// An error's body names it in one line, with its kind and the request id
/// the header carries.
async fn assert_error(response: reqwest::Response, status: u16, what: &str) {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let id = response
        .headers()
        .get("x-request-id")
        .expect("a request id")
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str(), "{what}: {body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        !message.is_empty() && !message.contains('\n'),
        "{what}: {body}"
    );
    assert!(body["kind"].is_string(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_role_and_every_bad_token() {
    let mut server = start().await;
    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let name = format!("{} user", role.as_str());
        server.home.add_user(&name, role).await.unwrap();
        let token = server.home.create_token(&name, None, None).await.unwrap();
        tokens.push((role, token.secret.to_string()));
    }
    let expired = server
        .home
        .create_token("analyst user", None, Some(Duration::ZERO))
        .await
        .unwrap();
    let revoked = server
        .home
        .create_token("analyst user", None, None)
        .await
        .unwrap();
    server.home.revoke_token(revoked.token.id).await.unwrap();

    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health.headers()["x-content-type-options"].to_str().unwrap(),
        "nosniff"
    );
    assert!(health.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    let mut n = 0;
    for (method, path, action) in ROUTES {
        for (role, token) in &tokens {
            n += 1;
            let response = call(&client, &server.base, (method, path), Some(token), n).await;
            let what = format!("{method} {path} as {}", role.as_str());
            if permitted(*role, action) {
                assert!(
                    response.status().is_success(),
                    "{what}: {}",
                    response.status()
                );
            } else {
                assert_error(response, 403, &what).await;
            }
        }
        for (label, token) in [
            ("no token", None),
            ("a wrong token", Some("emk_0123")),
            ("an expired token", Some(expired.secret.as_str())),
            ("a revoked token", Some(revoked.secret.as_str())),
        ] {
            n += 1;
            let response = call(&client, &server.base, (method, path), token, n).await;
            assert_error(response, 401, &format!("{method} {path} with {label}")).await;
        }
    }
    // The admin's recipients were recorded, and the chain holds.
    assert_eq!(server.home.recipients().await.unwrap().len(), 1);
    assert!(server.home.audit_verify().await.unwrap().intact);

    // A bad request is a 4xx with its reason, and records nothing.
    let admin = &tokens[0].1;
    let response = client
        .post(format!("{}/api/v1/recipients", server.base))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": "   "}))
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "a blank name").await;
    assert_eq!(server.home.recipients().await.unwrap().len(), 1);

    // A body that is not JSON, and a route that does not exist: JSON errors
    // too.
    let response = client
        .post(format!("{}/api/v1/recipients", server.base))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "a truncated JSON body").await;
    let response = client
        .get(format!("{}/api/v1/nothing-here", server.base))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "an unknown route").await;
    assert_eq!(server.home.recipients().await.unwrap().len(), 1);

    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
