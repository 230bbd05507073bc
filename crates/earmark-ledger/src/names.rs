//! Recipient names: one spelling per person, and none that could pass for
//! another's.
//!
//! A verdict names a person, so the name must read the same to everyone who
//! sees it. Names are stored in Unicode NFC, trimmed, without control or
//! format characters (a newline could forge an output line, a zero-width
//! space a second "Bob"). A name whose UTS #39 confusable skeleton, ignoring
//! case, equals an existing one's (Latin "Bob" and Cyrillic "Вob", "Al" and
//! "AI") is refused, naming the other; see [`confusable`].

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest recipient name, characters (after normalisation).
pub const MAX_NAME_CHARS: usize = 200;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing left after trimming.
    #[error("a recipient needs a name")]
    Blank,
    /// Longer than [`MAX_NAME_CHARS`].
    #[error("the name {name} is {chars} characters long; at most {MAX_NAME_CHARS} are allowed")]
    TooLong {
        /// The name, shortened and escaped for printing.
        name: String,
        /// Its length, characters.
        chars: usize,
    },
    /// It holds a control or format character.
    #[error("the name {name} holds the invisible or control character {character}")]
    Invisible {
        /// The name, escaped for printing.
        name: String,
        /// The character, as `U+XXXX`.
        character: String,
    },
}

/// `name` quoted with every control, format and non-ASCII whitespace
/// character escaped, for messages: a hostile name cannot forge a line.
pub fn printable(name: &str) -> String {
    format!("'{}'", terminal_safe(name))
}

/// `text` with every control, format and non-ASCII whitespace character
/// escaped as `\u{…}`: what a terminal may be shown of any stored or
/// supplied field (a title, an email, an org, a path), so that a hostile
/// one can neither forge a line (a newline) nor hide one (an escape
/// sequence, a bidirectional override).
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| is_invisible(c) || (c.is_whitespace() && c != ' ');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    )
}

/// The stored form of a recipient name: NFC, trimmed, checked.
pub fn normalise(raw: &str) -> Result<String, NameError> {
    let name: String = raw.nfc().collect::<String>().trim().to_string();
    if name.is_empty() {
        return Err(NameError::Blank);
    }
    if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
        return Err(NameError::Invisible {
            name: printable(&name.chars().take(60).collect::<String>()),
            character: format!("U+{:04X}", c as u32),
        });
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(NameError::TooLong {
            name: printable(&format!("{}…", name.chars().take(40).collect::<String>())),
            chars,
        });
    }
    Ok(name)
}

/// What a name looks like, for comparison only: its UTS #39 skeleton, with
/// runs of white space made one space.
fn skeleton(name: &str) -> String {
    let skeleton: String = unicode_security::confusable_detection::skeleton(name).collect();
    skeleton.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a name looks like, twice: its skeleton as written and in lower case.
/// Two names could be taken for each other when either pair is equal: the
/// same skeleton as written (Cyrillic "Вob" and "Bob"), or once both are in
/// lower case ("bob" and "Bob"; lowering first alone would miss the first
/// pair, since "в" is no look-alike of "b").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Likeness {
    written: String,
    lowered: String,
}

/// The [`Likeness`] of `name`.
pub fn likeness(name: &str) -> Likeness {
    let lower: String = name.chars().flat_map(char::to_lowercase).collect();
    Likeness {
        written: skeleton(name),
        lowered: skeleton(&lower),
    }
}

/// Whether `a` and `b` could be taken for each other.
pub fn confusable(a: &str, b: &str) -> bool {
    let (a, b) = (likeness(a), likeness(b));
    a.written == b.written || a.lowered == b.lowered
}

/// The first of `existing` that `name` could be taken for, if any.
pub fn confusable_with<'a>(
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = likeness(name);
    existing.into_iter().find(|other| {
        let other = likeness(other);
        other.written == wanted.written || other.lowered == wanted.lowered
    })
}

/// Names seen so far, found by either skeleton in constant time: for
/// checking an import of thousands against thousands.
#[derive(Default)]
pub struct Lookalikes {
    written: std::collections::HashMap<String, String>,
    lowered: std::collections::HashMap<String, String>,
}

impl Lookalikes {
    /// Adds `name`; returns the earlier name it could be taken for, if any
    /// (and then adds nothing).
    pub fn insert(&mut self, name: &str) -> Option<String> {
        let l = likeness(name);
        if let Some(other) = self
            .written
            .get(&l.written)
            .or(self.lowered.get(&l.lowered))
        {
            return Some(other.clone());
        }
        self.written.insert(l.written, name.to_string());
        self.lowered.insert(l.lowered, name.to_string());
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_name() {
        assert_eq!(normalise("  Jose\u{301} ").unwrap(), "Jos\u{e9}");
        assert_eq!(normalise(" \t "), Err(NameError::Blank));
        assert!(matches!(
            normalise("x\nACCUSED Bob"),
            Err(NameError::Invisible { .. })
        ));
        assert!(matches!(
            normalise("Bob\u{200b}"),
            Err(NameError::Invisible { .. })
        ));
        assert!(matches!(
            normalise(&"a".repeat(201)),
            Err(NameError::TooLong { chars: 201, .. })
        ));
        assert_eq!(normalise(&"é".repeat(200)).unwrap().chars().count(), 200);
    }

    #[test]
    fn look_alikes_are_found() {
        let existing = ["Bob", "Ana Lima", "Al"];
        assert_eq!(confusable_with("\u{412}ob", existing), Some("Bob"));
        assert_eq!(confusable_with("bob", existing), Some("Bob"));
        assert_eq!(confusable_with("Ana  Lima", existing), Some("Ana Lima"));
        assert_eq!(confusable_with("AI", existing), Some("Al"));
        assert_eq!(confusable_with("Ana Lina", existing), None);
        assert_eq!(confusable_with("Bo Berg", existing), None);
    }

    #[test]
    fn lookalikes_find_the_earlier_name() {
        let mut seen = Lookalikes::default();
        assert_eq!(seen.insert("Bob"), None);
        assert_eq!(seen.insert("Cy"), None);
        assert_eq!(seen.insert("\u{412}ob").as_deref(), Some("Bob"));
        assert_eq!(seen.insert("cy").as_deref(), Some("Cy"));
        assert_eq!(seen.insert("Dee"), None);
    }

    #[test]
    fn printing_escapes_what_could_forge_a_line() {
        assert_eq!(printable("x\nACCUSED"), "'x\\u{000a}ACCUSED'");
        assert_eq!(printable("Ana Lima"), "'Ana Lima'");
    }
}
