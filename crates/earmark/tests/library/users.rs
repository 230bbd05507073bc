//! The service's users and tokens, as the library keeps them: secrets shown
//! once and stored only hashed, tokens that stop working when revoked or
//! expired, rows no database writer without the key can raise or plant, and
//! one table of which role may do what.

use std::time::Duration;

use earmark::{permitted, Action, ErrorKind, Role};

use super::home_for_three;
use super::tampering::edit;

#[tokio::test]
async fn a_user_signs_in_once_with_the_one_time_password_and_by_token() {
    let (_dir, root, home) = home_for_three().await;
    let added = home.add_user("Dana", Role::Analyst).await.unwrap();
    assert!(added.user.must_change_password);
    let user = home
        .check_password("Dana", &added.one_time_password)
        .await
        .unwrap();
    assert_eq!(user.role, Role::Analyst);
    let wrong = home.check_password("Dana", "guess").await.unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Unauthorized);
    let nobody = home.check_password("Nobody", "guess").await.unwrap_err();
    assert_eq!(nobody.to_string(), wrong.to_string());
    let taken = home.add_user("Dana", Role::Admin).await.unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::Usage, "{taken}");

    let token = home
        .create_token(
            "Dana",
            Some("laptop"),
            Some(Duration::from_secs(30 * 86_400)),
        )
        .await
        .unwrap();
    assert!(token.secret.starts_with(earmark::TOKEN_PREFIX));
    assert_eq!(
        home.authenticate_token(&token.secret).await.unwrap().name,
        "Dana"
    );
    // Neither the secret nor the password is anywhere in the ledger.
    let ledger = std::fs::read(root.join("ledger.sqlite")).unwrap();
    let holds = |needle: &str| ledger.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!holds(&token.secret));
    assert!(!holds(&added.one_time_password));

    let expired = home
        .create_token("Dana", None, Some(Duration::ZERO))
        .await
        .unwrap();
    let error = home.authenticate_token(&expired.secret).await.unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    home.revoke_token(token.token.id).await.unwrap();
    let error = home.authenticate_token(&token.secret).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(error.to_string().contains("revoked"), "{error}");
    let error = home.authenticate_token("emk_0000").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(home.tokens(Some("Dana")).await.unwrap().len(), 2);
    assert!(home.audit_verify().await.unwrap().intact);
    let actions: Vec<String> = home
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "token").count(), 3);
    assert!(actions.iter().any(|a| a == "user"));
}

/// Whoever can write the database without the key cannot make a user an
/// admin, nor plant a token of their own.
#[tokio::test]
async fn a_raised_role_or_a_planted_token_is_refused() {
    let (_dir, root, home) = home_for_three().await;
    home.add_user("Eve", Role::Auditor).await.unwrap();
    let token = home.create_token("Eve", None, None).await.unwrap();
    edit(
        &root,
        &["UPDATE users SET role = 'admin' WHERE name = 'Eve'"],
    )
    .await;
    let error = home.authenticate_token(&token.secret).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Ledger, "{error}");
    assert!(home.users().await.is_err());

    let (_dir, root, home) = home_for_three().await;
    home.add_user("Mallory", Role::Analyst).await.unwrap();
    // The SHA-256 of "emk_planted", with the MAC of a real token row copied.
    let real = home.create_token("Mallory", None, None).await.unwrap();
    edit(
        &root,
        &["INSERT INTO tokens (user_id, token_hash, created_at, mac) \
           SELECT user_id, '67617fb0935eed90590e64a8bc7df8615609578716cf343953a7d13669322269', created_at, mac \
           FROM tokens WHERE id = 1"],
    )
    .await;
    drop(real);
    let error = home.authenticate_token("emk_planted").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Ledger, "{error}");
    assert!(error.to_string().contains("token row 2"), "{error}");
}

#[test]
fn only_an_admin_manages_users_and_recipients() {
    for role in Role::ALL {
        assert_eq!(
            permitted(role, Action::ManageUsers),
            role == Role::Admin,
            "{role:?}"
        );
        assert_eq!(
            permitted(role, Action::ManageRecipients),
            role == Role::Admin,
            "{role:?}"
        );
    }
    assert!(permitted(Role::Analyst, Action::Trace));
    assert!(!permitted(Role::Analyst, Action::ReadRecipients));
    assert!(!permitted(Role::Analyst, Action::Mark));
    assert!(permitted(Role::Sender, Action::Mark));
    assert!(permitted(Role::Sender, Action::AddWorks));
    assert!(!permitted(Role::Sender, Action::Trace));
    assert!(permitted(Role::Auditor, Action::ReadAudit));
    assert!(!permitted(Role::Auditor, Action::Mark));
}
