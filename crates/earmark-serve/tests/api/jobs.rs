//! Mark and trace jobs end to end: an admin adds recipients, a sender
//! uploads and marks a master, analysts upload leaks and get the library's
//! verdict, ten at once.

use std::sync::Arc;
use std::time::Duration;

use earmark::{Epsilon, Leak, NoProgress, Role};

use crate::{master, opus_voice_16k, Server};

/// Adds `names` through the API as the admin, then uploads the master as
/// the sender; the work.
async fn recipients_and_work(server: &Server, names: &[&str]) -> serde_json::Value {
    for name in names {
        let (status, added) = server
            .post_json(
                Role::Admin,
                "/api/v1/recipients",
                serde_json::json!({"name": name, "org": "Board"}),
            )
            .await;
        assert_eq!(status, 201, "{added}");
    }
    let (status, work) = server
        .upload(
            Role::Sender,
            "/api/v1/works",
            Server::form(
                std::fs::read(master()).unwrap(),
                &[("title", "Board meeting")],
            ),
        )
        .await;
    assert_eq!(status, 201, "{work}");
    work
}

/// Adds `names` through the API as the admin, uploads and marks the master
/// for them as the sender, and returns the mark job's result.
async fn mark_for(server: &Server, names: &[&str]) -> serde_json::Value {
    let work = recipients_and_work(server, names).await;
    let (status, job) = server
        .post_json(
            Role::Sender,
            &format!("/api/v1/works/{}/marks", work["id"]),
            serde_json::json!({"recipients": names, "format": "wav"}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "queued");
    let path = format!("/api/v1/marks/{}", job["id"].as_str().unwrap());
    let done = server
        .finished(Role::Sender, &path, Duration::from_secs(120))
        .await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"], 1.0);
    done["result"].clone()
}

/// Queues a trace of `leak` as the analyst; the job's id.
async fn submit_trace(server: &Server, leak: &std::path::Path) -> String {
    let (status, job) = server
        .upload(
            Role::Analyst,
            "/api/v1/traces",
            Server::form(std::fs::read(leak).unwrap(), &[]),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["submitted_by"], "analyst user");
    job["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opus_leak_traced_as_a_job_names_its_recipient_as_the_library_does() {
    let server = Server::start().await;
    let marked = mark_for(&server, &["Ana", "Bo", "Cy"]).await;
    let copies = marked["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 3);
    let bo = copies.iter().find(|c| c["recipient"] == "Bo").unwrap();
    let leak = server.dir.path().join("leak.wav");
    opus_voice_16k(std::path::Path::new(bo["path"].as_str().unwrap()), &leak);

    let id = submit_trace(&server, &leak).await;
    let path = format!("/api/v1/traces/{id}");
    let job = server
        .finished(Role::Analyst, &path, Duration::from_secs(120))
        .await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(accused(&job), ["Bo"], "{}", job["result"]);

    // The same verdict as the library's own trace of the same file, field
    // for field.
    let direct = server
        .home
        .trace_leak(
            Leak::Path(leak),
            None,
            Epsilon::DEFAULT,
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    let direct: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&direct).unwrap()).unwrap();
    assert_eq!(job["result"], direct);

    // A trace's id is not a mark's, and the upload is gone.
    let (status, _) = server
        .get(Role::Admin, &format!("/api/v1/marks/{id}"))
        .await;
    assert_eq!(status, 404);
    let spool = std::fs::read_dir(server.home.root().join("spool")).unwrap();
    assert_eq!(spool.count(), 0);
    // The analyst's trace is in the chain under their name.
    let log = server.home.audit_log().await.unwrap();
    let traced = log.iter().find(|e| e.action == "trace").unwrap();
    assert!(
        traced.detail.contains("\"by\":\"analyst user\""),
        "{traced:?}"
    );
    assert!(server.home.audit_verify().await.unwrap().intact);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_traces_submitted_at_once_all_finish_with_the_right_verdicts() {
    let server = Server::start().await;
    let names: Vec<String> = (1..=5).map(|i| format!("Member {i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let marked = mark_for(&server, &refs).await;
    // Two leaks of each copy: the copy itself and its Opus voice note.
    let mut leaks = Vec::new();
    for (i, copy) in marked["copies"].as_array().unwrap().iter().enumerate() {
        let file = std::path::PathBuf::from(copy["path"].as_str().unwrap());
        let opus = server.dir.path().join(format!("leak-{i}.wav"));
        opus_voice_16k(&file, &opus);
        let holder = copy["recipient"].as_str().unwrap().to_string();
        leaks.push((file, holder.clone()));
        leaks.push((opus, holder));
    }
    assert_eq!(leaks.len(), 10);
    let server = Arc::new(server);
    let submitted = futures_join(leaks.iter().map(|(leak, holder)| {
        let (server, leak, holder) = (Arc::clone(&server), leak.clone(), holder.clone());
        async move { (submit_trace(&server, &leak).await, holder) }
    }))
    .await;
    for (id, holder) in submitted {
        let job = server
            .finished(
                Role::Analyst,
                &format!("/api/v1/traces/{id}"),
                Duration::from_secs(240),
            )
            .await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(accused(&job), [holder.as_str()], "{}", job["result"]);
    }
    assert!(server.home.audit_verify().await.unwrap().intact);
    Arc::into_inner(server).unwrap().stop().await;
}

/// The names a finished trace job accuses.
fn accused(job: &serde_json::Value) -> Vec<&str> {
    job["result"]["accused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect()
}

/// Runs every future at once, on the runtime's threads.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A mark job names its profile; one that is not `transparent`, `balanced`
/// or `robust` is refused before anything is queued (422, as every body
/// that does not fit its schema), saying which profiles there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_job_takes_a_profile_and_refuses_an_unknown_one() {
    let server = Server::start().await;
    let work = recipients_and_work(&server, &["Ana"]).await;
    let marks = format!("/api/v1/works/{}/marks", work["id"]);
    let (status, refused) = server
        .post_json(
            Role::Sender,
            &marks,
            serde_json::json!({"recipients": ["Ana"], "profile": "loud"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("transparent"),
        "{refused}"
    );
    let (status, job) = server
        .post_json(
            Role::Sender,
            &marks,
            serde_json::json!({"recipients": ["Ana"], "profile": "robust"}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let path = format!("/api/v1/marks/{}", job["id"].as_str().unwrap());
    let done = server
        .finished(Role::Sender, &path, Duration::from_secs(120))
        .await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["result"]["copies"].as_array().unwrap().len(), 1);
}
