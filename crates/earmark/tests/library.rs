//! The library called as a service would call it: from inside a tokio
//! runtime, on a real home, a real recording and a real SQLite ledger.

use std::path::{Path, PathBuf};

use earmark::{Epsilon, Format, Home, MarkRequest, NoProgress, Selection, TraceRequest};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn a_home_marks_and_traces_inside_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    Home::init(&root).unwrap();
    let home = Home::open(&root).unwrap();
    for name in ["Ana", "Bo", "Cy"] {
        home.add_recipient(name, None, None).unwrap();
    }
    let out = dir.path().join("copies");
    let report = home
        .mark(
            &MarkRequest {
                work: fixture("speech_en_f_8k_allison_demo-congrats.wav"),
                recipients: Selection::All,
                out: out.clone(),
                format: Format::Wav,
                title: Some("Demo".into()),
            },
            &NoProgress,
        )
        .unwrap();
    assert_eq!(report.copies.len(), 3);
    let bo = report.copies.iter().find(|c| c.recipient == "Bo").unwrap();
    let verdict = home
        .trace(
            &TraceRequest {
                leak: bo.path.clone(),
                work: None,
                epsilon: Epsilon::DEFAULT,
            },
            &NoProgress,
        )
        .unwrap();
    let names: Vec<&str> = verdict.accused.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Bo"]);
    assert!(verdict.accused[0].false_accusation_bound <= 1e-6);
    // The JSON keeps the field names scripts use.
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["method"], "informed");
    assert_eq!(json["accused"][0]["evidence"][0], "identifier");
    assert!(json["accused"][0]["false_accusation_bound"].is_f64());
    assert!(home.audit_verify().unwrap().intact);
    drop(home);
}

#[test]
fn epsilon_is_held_to_the_open_unit_interval() {
    for bad in ["NaN", "nan", "0", "1", "2", "-1", "abc", "inf", "1e-400"] {
        assert!(bad.parse::<Epsilon>().is_err(), "{bad}");
    }
    assert!(Epsilon::new(f64::NAN).is_err());
    assert_eq!("1e-9".parse::<Epsilon>().unwrap().get(), 1e-9);
}
