//! Who is acting: the signed-in user of a service request or job, whose
//! name every audit row appended on their behalf carries as `"by"`.
//!
//! It is scoped to the work done for them (a tokio task-local, carried
//! onto blocking threads by whoever starts them), so that no ledger
//! operation needs an extra argument and none can forget it: the row is
//! appended where every audited change ends, and the name goes into the
//! detail the chain's MAC covers. The command, run by whoever holds the
//! home, acts as no one and its rows carry no `"by"`.

use std::future::Future;

tokio::task_local! {
    static ACTOR: String;
}

/// Runs `work` acting as `user`: every audit row it appends says `"by": user`.
pub async fn acting_as<F: Future>(user: &str, work: F) -> F::Output {
    ACTOR.scope(user.to_string(), work).await
}

/// Runs blocking `work` acting as `actor`, if there is one (see [`current`]).
pub fn acting_as_blocking<T>(actor: Option<String>, work: impl FnOnce() -> T) -> T {
    match actor {
        Some(user) => ACTOR.sync_scope(user, work),
        None => work(),
    }
}

/// The user the current task acts as, if any.
pub fn current() -> Option<String> {
    ACTOR.try_with(Clone::clone).ok()
}

/// `detail` (a JSON object) with `"by": actor` added when someone is acting.
pub(crate) fn signed(detail: &str) -> std::borrow::Cow<'_, str> {
    let Some(user) = current() else {
        return detail.into();
    };
    match serde_json::from_str::<serde_json::Value>(detail) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("by".into(), serde_json::Value::String(user));
            serde_json::Value::Object(fields).to_string().into()
        }
        // Every detail is an object; anything else is wrapped, never unsigned.
        Ok(other) => serde_json::json!({"detail": other, "by": user})
            .to_string()
            .into(),
        Err(_) => serde_json::json!({"detail": detail, "by": user})
            .to_string()
            .into(),
    }
}
