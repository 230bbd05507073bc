//! The benchmark judges by `earmark trace`'s own rule: on the same leak and
//! the same readings, its informed verdict names the same recipients with
//! the same bounds as `Home::trace`.

use std::path::{Path, PathBuf};

use earmark::{
    Epsilon, Format, Home, MarkRequest, NoProgress, Selection, TraceRequest, ENGINE_KEY_LABEL,
};
use earmark_codes::TardosCode;
use earmark_engine::layout::FINGERPRINT_POSITIONS;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn the_bench_and_trace_accuse_alike_on_the_same_readings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    Home::init(&root).await.unwrap();
    let home = Home::open(&root).await.unwrap();
    for name in ["Ana", "Bo", "Cy", "Di"] {
        home.add_recipient(name, None, None).await.unwrap();
    }
    let master_path = fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let marked = home
        .mark(
            &MarkRequest {
                work: master_path.clone(),
                recipients: Selection::All,
                out: dir.path().join("copies").into(),
                format: Format::Wav,
                title: None,
                settings: Default::default(),
            },
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    let leaker = marked.copies.iter().find(|c| c.recipient == "Cy").unwrap();
    let traced = home
        .trace(
            &TraceRequest {
                leak: leaker.path.clone(),
                work: Some(marked.work),
                epsilon: Epsilon::DEFAULT,
            },
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(traced.method, earmark::Method::Informed);

    // The same readings, taken the benchmark's way, judged by its `judge`.
    let master_key = earmark::load_key_file(&root.join("keystore/master.key")).unwrap();
    let engine_key = master_key.derive(ENGINE_KEY_LABEL);
    let master = earmark::analysis_signal(&earmark_audio_io::read(&master_path).unwrap());
    let leak = earmark::analysis_signal(&earmark_audio_io::read(&leaker.path).unwrap());
    let informed = earmark::read_through_master(&master, &leak, &engine_key).unwrap();
    let suspects: Vec<(i64, u64)> = marked
        .copies
        .iter()
        .map(|c| (c.recipient_id, u64::from_str_radix(&c.payload, 16).unwrap()))
        .collect();
    let recipients: Vec<u32> = suspects.iter().map(|&(id, _)| id as u32).collect();
    let code = TardosCode::new(&master_key, marked.work as u32, FINGERPRINT_POSITIONS);
    let benched = earmark_bench::informed::judge(
        &informed.reading,
        &engine_key,
        &suspects,
        &code,
        &recipients,
    );

    let from_trace: Vec<(i64, f64)> = traced
        .accused
        .iter()
        .map(|a| (a.recipient_id, a.false_accusation_bound))
        .collect();
    let from_bench: Vec<(i64, f64)> = benched
        .accused
        .iter()
        .map(|a| (a.recipient, a.bound))
        .collect();
    assert_eq!(from_trace.len(), 1, "{from_trace:?}");
    assert_eq!(from_trace[0].0, leaker.recipient_id);
    assert_eq!(from_bench.len(), from_trace.len(), "{from_bench:?}");
    for ((tr, tb), (br, bb)) in from_trace.iter().zip(&from_bench) {
        assert_eq!(tr, br);
        assert!(
            (tb - bb).abs() <= 1e-9 * tb.abs().max(1e-300),
            "{tb} vs {bb}"
        );
    }
}
