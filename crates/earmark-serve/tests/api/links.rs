//! Delivery links end to end: made through the API, fetched with no login
//! (202 while the copy is rendered, then the file, with ranges), refused
//! when revoked, expired or used up, fetched fifty at once, and a leak of a
//! downloaded copy traced back to its link.

use std::time::Duration;

use earmark::Role;

use crate::{master, Server};

/// Registers the bundled master and adds `names` as recipients; its id.
async fn work_for(server: &Server, names: &[String]) -> i64 {
    for name in names {
        server.home.add_recipient(name, None, None).await.unwrap();
    }
    server
        .home
        .add_work(&master(), Some("Board meeting"))
        .await
        .unwrap()
        .work
        .id
}

/// The copies of `work` the ledger records.
async fn copies(server: &Server, work: i64) -> Vec<earmark::DeliveredCopy> {
    server.home.work_detail(work).await.unwrap().copies
}

/// Makes links to `work` for `names` as the sender; each `(name, link
/// path)`.
async fn links(
    server: &Server,
    work: i64,
    names: &[&str],
    extra: serde_json::Value,
) -> Vec<(String, String)> {
    let mut body = serde_json::json!({"recipients": names, "format": "mp3"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, made) = server
        .post_json(
            Role::Sender,
            &format!("/api/v1/works/{work}/deliveries"),
            body,
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let link = m["link"].as_str().unwrap().to_string();
            assert!(
                link.starts_with("/d/eml_") && link.len() == 3 + 4 + 64,
                "{link}"
            );
            (m["recipient"].as_str().unwrap().to_string(), link)
        })
        .collect()
}

/// Fetches `link` until the copy is served (202s first); the response.
async fn fetch(server: &Server, link: &str, range: Option<&str>) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut request = server
            .client
            .get(server.url(link))
            .header("user-agent", "ReviewerPlayer/2.1");
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let response = request.send().await.unwrap();
        if response.status().as_u16() != 202 {
            return response;
        }
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(
            tokio::time::Instant::now() < deadline,
            "{link} never rendered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Encodes `input` as MP3 at 64 kbit/s, keeping 20 s from 5 s in.
fn mp3_64k_excerpt(input: &std::path::Path, output: &std::path::Path) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-ss", "5", "-t", "20", "-i"])
        .arg(input)
        .args(["-b:a", "64k"])
        .arg(output)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downloaded_copy_leaked_as_a_cut_mp3_names_its_recipient_and_link() {
    let server = Server::start().await;
    let names: Vec<String> = ["Ana", "Bo", "Cy"].map(String::from).to_vec();
    let work = work_for(&server, &names).await;
    let made = links(&server, work, &["Ana", "Bo", "Cy"], serde_json::json!({})).await;
    let (_, bo_link) = made.iter().find(|(n, _)| n == "Bo").unwrap();
    // Nothing is rendered before a link is used.
    assert!(copies(&server, work).await.is_empty());

    let first = server.client.get(server.url(bo_link)).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let response = fetch(&server, bo_link, None).await;
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"") && disposition.contains("Bo"),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    // A second download streams the same bytes; a range, the right ones.
    let again = fetch(&server, bo_link, None).await.bytes().await.unwrap();
    assert_eq!(again, bytes);
    let part = fetch(&server, bo_link, Some("bytes=1000-1999")).await;
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.bytes().await.unwrap(), bytes[1000..2000]);
    // One copy recorded, Bo's, in the file's transaction.
    let copies = copies(&server, work).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].recipient.as_deref(), Some("Bo"));

    let copy = server.dir.path().join("bo.mp3");
    std::fs::write(&copy, &bytes).unwrap();
    let leak = server.dir.path().join("leak.mp3");
    mp3_64k_excerpt(&copy, &leak);
    let (status, job) = server
        .upload(
            Role::Analyst,
            "/api/v1/traces",
            Server::form(std::fs::read(&leak).unwrap(), &[]),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let path = format!("/api/v1/traces/{}", job["id"].as_str().unwrap());
    let job = server
        .finished(Role::Analyst, &path, Duration::from_secs(120))
        .await;
    let accused = job["result"]["accused"].as_array().unwrap();
    assert_eq!(accused.len(), 1, "{}", job["result"]);
    assert_eq!(accused[0]["name"], "Bo");
    let delivery = &accused[0]["deliveries"][0];
    assert_eq!(delivery["link"]["recipient_id"], accused[0]["recipient_id"]);
    let downloads = delivery["downloads"].as_array().unwrap();
    assert_eq!(downloads.len(), 3, "{delivery}");
    assert_eq!(
        delivery["link"]["downloads"], 2,
        "a resumed range is not a new download"
    );
    for d in downloads {
        assert_eq!(d["ip"], "127.0.0.1");
        assert_eq!(d["user_agent"], "ReviewerPlayer/2.1");
        assert!(d["at"].is_string());
    }
    // Auditors see the downloads; senders do not.
    let (status, all) = server.get(Role::Auditor, "/api/v1/downloads").await;
    assert_eq!(status, 200);
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(server.get(Role::Sender, "/api/v1/downloads").await.0, 403);
    assert!(server.home.audit_verify().await.unwrap().intact);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_expired_and_used_up_links_are_gone_and_render_nothing() {
    let server = Server::start().await;
    let names: Vec<String> = ["Ana", "Bo", "Cy"].map(String::from).to_vec();
    let work = work_for(&server, &names).await;
    let revoked = links(&server, work, &["Ana"], serde_json::json!({})).await;
    let (status, listed) = server
        .get(Role::Sender, &format!("/api/v1/links?work={work}"))
        .await;
    assert_eq!(status, 200);
    let id = listed[0]["id"].as_i64().unwrap();
    assert!(
        !listed.to_string().contains(&revoked[0].1[3..]),
        "no secret is listed"
    );
    let (status, _) = server
        .post_json(
            Role::Sender,
            &format!("/api/v1/links/{id}/revoke"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let expired = links(&server, work, &["Bo"], serde_json::json!({"expires": "0s"})).await;
    let once = links(
        &server,
        work,
        &["Cy"],
        serde_json::json!({"max_downloads": 1}),
    )
    .await;
    assert_eq!(
        fetch(&server, &once[0].1, None).await.status().as_u16(),
        200
    );
    // Its one download may still be resumed, not taken again.
    let resumed = fetch(&server, &once[0].1, Some("bytes=1000-")).await;
    assert_eq!(resumed.status().as_u16(), 206);
    let again = fetch(&server, &once[0].1, Some("bytes=0-")).await;
    assert_eq!(again.status().as_u16(), 410);

    for (what, link) in [
        ("revoked", &revoked[0].1),
        ("expired", &expired[0].1),
        ("used up", &once[0].1),
    ] {
        let response = server.client.get(server.url(link)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 410, "{what}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["kind"], "link-gone", "{what}: {body}");
    }
    // Unknown secrets, an API token among them, are 404 and alike.
    let token = format!("/d/{}", server.token(Role::Admin));
    let mut bodies = Vec::new();
    for link in ["/d/eml_0000", token.as_str(), "/d/%2e%2e%2fledger.sqlite"] {
        let response = server.client.get(server.url(link)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{link}");
        let mut body: serde_json::Value = response.json().await.unwrap();
        body["request_id"] = serde_json::Value::Null;
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // Only Cy's copy was ever rendered.
    let copies = copies(&server, work).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].recipient.as_deref(), Some("Cy"));
    assert!(server.home.audit_verify().await.unwrap().intact);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_links_fetched_at_once_are_all_served() {
    let server = Server::start().await;
    let names: Vec<String> = (1..=50).map(|i| format!("Reviewer {i:02}")).collect();
    let work = work_for(&server, &names).await;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let made = links(&server, work, &refs, serde_json::json!({})).await;
    let server = std::sync::Arc::new(server);
    let fetches: Vec<_> = made
        .into_iter()
        .map(|(_, link)| {
            let server = std::sync::Arc::clone(&server);
            tokio::spawn(async move {
                let response = fetch(&server, &link, None).await;
                (
                    response.status().as_u16(),
                    response.bytes().await.unwrap().len(),
                )
            })
        })
        .collect();
    for f in fetches {
        let (status, bytes) = f.await.unwrap();
        assert_eq!(status, 200);
        assert!(bytes > 100_000, "{bytes} bytes");
    }
    assert_eq!(copies(&server, work).await.len(), 50);
    assert_eq!(server.home.downloads(None).await.unwrap().len(), 50);
    assert!(server.home.audit_verify().await.unwrap().intact);
    std::sync::Arc::into_inner(server).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_cannot_be_rendered_says_so_instead_of_preparing_for_ever() {
    let server = Server::start().await;
    let names = vec!["Ana".to_string()];
    let work = work_for(&server, &names).await;
    let made = links(&server, work, &["Ana"], serde_json::json!({})).await;
    // The master is forgotten after the link was made: nothing can render it.
    server.home.forget_work(work).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let response = server
            .client
            .get(server.url(&made[0].1))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() != 202 {
            break response;
        }
        assert!(tokio::time::Instant::now() < deadline, "still preparing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "60");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["kind"], "render-failed", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("forgotten"),
        "{body}"
    );
    assert!(copies(&server, work).await.is_empty());
    server.stop().await;
}
