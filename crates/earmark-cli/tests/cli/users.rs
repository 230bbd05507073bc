//! `earmark user` and `earmark token`: secrets printed once, never listed,
//! bad names and roles refused with one line and exit 2.

use crate::common::home::TestHome;

#[test]
fn users_and_tokens_from_the_command_line() {
    let home = TestHome::new();
    let added: serde_json::Value =
        serde_json::from_str(&home.ok(&["user", "add", "Dana", "--role", "analyst", "--json"]))
            .unwrap();
    assert_eq!(added["user"]["role"], "analyst");
    let password = added["one_time_password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 32);
    let text = home.ok(&["user", "add", "Ana", "--role", "admin"]);
    assert!(text.contains("one-time password, shown once"), "{text}");
    let users: serde_json::Value =
        serde_json::from_str(&home.ok(&["user", "list", "--json"])).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(!users.to_string().contains(&password));

    let created: serde_json::Value = serde_json::from_str(&home.ok(&[
        "token",
        "create",
        "--user",
        "Dana",
        "--expires",
        "30d",
        "--label",
        "laptop",
        "--json",
    ]))
    .unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("emk_") && secret.len() == 4 + 64,
        "{secret}"
    );
    assert!(created["token"]["expires_at"].is_string());
    let listed = home.ok(&["token", "list", "--user", "Dana", "--json"]);
    assert!(!listed.contains(&secret[4..]), "{listed}");
    let listed = home.ok(&["token", "list"]);
    assert!(
        listed.contains("laptop") && listed.contains("expires"),
        "{listed}"
    );
    let revoked = home.ok(&["token", "revoke", "1"]);
    assert!(revoked.contains("revoked token 1"), "{revoked}");
    assert!(home.ok(&["token", "list"]).contains("revoked"));
    assert!(home.ok(&["audit", "verify"]).contains("intact"));

    for (args, needle) in [
        (
            vec!["user", "add", "Dana", "--role", "sender"],
            "already exists",
        ),
        (vec!["user", "add", "Bo", "--role", "boss"], "no role named"),
        (vec!["token", "create", "--user", "Nobody"], "no user named"),
        (
            vec!["token", "create", "--user", "Dana", "--expires", "soon"],
            "expires",
        ),
        (vec!["token", "revoke", "99"], "no token with id 99"),
    ] {
        let out = home.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
