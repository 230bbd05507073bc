//! Uploads: a master registered from one; and every bad upload refused
//! with one clear 4xx, recording nothing and leaving no file behind.

use earmark::Role;

use crate::{assert_json_error, master, Server};

/// Everything a refused request could have left: works, recipients, audit
/// rows, stored masters, spooled uploads and queued jobs' files.
async fn footprint(server: &Server) -> (usize, usize, usize, Vec<String>) {
    let root = server.home.root();
    let mut files = Vec::new();
    for dir in ["masters", "spool", "deliveries"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                files.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    files.sort();
    (
        server.home.works().await.unwrap().len(),
        server.home.recipients().await.unwrap().len(),
        server.home.audit_log().await.unwrap().len(),
        files,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_uploaded_is_registered_once_with_its_title() {
    let server = Server::start().await;
    let bytes = std::fs::read(master()).unwrap();
    let (status, work) = server
        .upload(
            Role::Sender,
            "/api/v1/works",
            Server::form(bytes.clone(), &[("title", "Board meeting")]),
        )
        .await;
    assert_eq!(status, 201, "{work}");
    assert_eq!(work["title"], "Board meeting");
    assert_eq!(work["rate"], 8000);
    let id = work["id"].as_i64().unwrap();
    // The same recording again is the same work.
    let (status, again) = server
        .upload(Role::Sender, "/api/v1/works", Server::form(bytes, &[]))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id);
    let (status, detail) = server
        .get(Role::Analyst, &format!("/api/v1/works/{id}"))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail["master_kept"].as_bool().unwrap(), "{detail}");
    assert!(detail.get("master_path").is_none(), "{detail}");
    // Registered by the sender, in the chain.
    let log = server.home.audit_log().await.unwrap();
    let registered = log.iter().find(|e| e.action == "work").unwrap();
    assert!(registered.detail.contains("\"by\":\"sender user\""));
    assert!(server.home.audit_verify().await.unwrap().intact);
    server.stop().await;
}

/// A multipart body cut off before its closing boundary.
fn truncated_multipart() -> (String, Vec<u8>) {
    let boundary = "earmark-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&std::fs::read(master()).unwrap()[..20_000]);
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_one_clear_4xx_and_record_nothing() {
    // A bound below the bundled master's 484 kB, to be crossed.
    let server = Server::start_with_limit(200_000).await;
    let admin = server.token(Role::Admin).to_string();
    server.home.add_recipient("Ana", None, None).await.unwrap();
    let before = footprint(&server).await;
    let master = std::fs::read(master()).unwrap();
    let mut not_audio = b"RIFF....WAVEthis is not audio at all".to_vec();
    not_audio.resize(4096, b'x');
    let hostile = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"plain text".to_vec())
            .file_name("../../../../tmp/escaped"),
    );
    let (csv_type, _) = ("text/csv", ());
    let (cut_type, cut_body) = truncated_multipart();
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "a master that is not audio",
            server
                .client
                .post(server.url("/api/v1/works"))
                .multipart(Server::form(not_audio.clone(), &[])),
            400,
        ),
        (
            "a leak that is not audio",
            server
                .client
                .post(server.url("/api/v1/traces"))
                .multipart(Server::form(not_audio, &[])),
            400,
        ),
        (
            "an empty leak",
            server
                .client
                .post(server.url("/api/v1/traces"))
                .multipart(Server::form(Vec::new(), &[])),
            400,
        ),
        (
            "a hostile file name",
            server
                .client
                .post(server.url("/api/v1/traces"))
                .multipart(hostile),
            400,
        ),
        (
            "a truncated upload",
            server
                .client
                .post(server.url("/api/v1/traces"))
                .header("content-type", cut_type.as_str())
                .body(cut_body),
            400,
        ),
        (
            "an oversized master",
            server
                .client
                .post(server.url("/api/v1/works"))
                .multipart(Server::form(master.clone(), &[])),
            413,
        ),
        (
            "an oversized leak",
            server
                .client
                .post(server.url("/api/v1/traces"))
                .multipart(Server::form(master, &[])),
            413,
        ),
        (
            "a leak said to be a work that is not a number",
            server
                .client
                .post(server.url("/api/v1/traces"))
                .multipart(Server::form(b"x".to_vec(), &[("work", "../1")])),
            400,
        ),
        (
            "a CSV with a bad row",
            server
                .client
                .post(server.url("/api/v1/recipients/import"))
                .header("content-type", csv_type)
                .body("name,email\nBo,bo@example.org\n\u{202e}Cy,cy@example.org\n"),
            422,
        ),
        (
            "a CSV with no name column",
            server
                .client
                .post(server.url("/api/v1/recipients/import"))
                .header("content-type", csv_type)
                .body("email\nbo@example.org\n"),
            422,
        ),
    ];
    for (what, request, status) in cases {
        let response = request.bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_json_error(&body, &id, what);
        assert_eq!(footprint(&server).await, before, "{what} left something");
    }
    assert!(!std::path::Path::new("/tmp/escaped").exists());
    assert!(server.home.audit_verify().await.unwrap().intact);
    server.stop().await;
}
