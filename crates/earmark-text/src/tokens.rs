//! Tokens of transcript text: words, numbers, symbols, punctuation and
//! protected markup, each with its byte span, and the normalised key that
//! comparisons use.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Letters, with internal apostrophes, hyphens and dotted abbreviations.
    Word,
    /// Digits, with internal separators (`1,000`, `5.5`, `3:30`, `1st`).
    Number,
    /// A symbol that reads as a word: `%`, `$`, `&`, `#`, `@`, `+`, `£`, `€`.
    Symbol,
    /// Any other visible character (or `...`, `--`).
    Punct,
    /// Markup kept as is and never read: `<v Alice>`, `<i>`, `{\an8}`.
    Tag,
}

/// One token of a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Kind.
    pub kind: TokenKind,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset after the last byte.
    pub end: usize,
    /// Normalised form: lower case, typographic quotes and apostrophes
    /// folded to ASCII, `…` as `...`.
    pub key: String,
}

impl Token {
    /// Whether the token reads as a word (words, numbers, symbols).
    pub fn is_wordlike(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Word | TokenKind::Number | TokenKind::Symbol
        )
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}')
}

fn is_symbol(c: char) -> bool {
    matches!(c, '%' | '$' | '&' | '#' | '@' | '+' | '£' | '€')
}

/// Folds the typographic forms retyping changes: quotes, apostrophes,
/// dashes' look-alikes and the ellipsis character.
pub fn fold_char(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{02bc}' | '\u{201a}' | '`' | '\u{00b4}' => '\'',
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{00ab}' | '\u{00bb}' => '"',
        '\u{2010}' | '\u{2011}' | '\u{2212}' => '-',
        '\u{00a0}' | '\u{2009}' | '\u{202f}' => ' ',
        _ => c,
    }
}

fn key_of(text: &str) -> String {
    // The common case, and the same result: among ASCII characters only
    // the backtick folds, and lower case is ASCII's own.
    if text.is_ascii() && !text.contains('`') {
        return text.to_ascii_lowercase();
    }
    text.chars()
        .map(fold_char)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits `text` into tokens. Whitespace separates tokens and is not one.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() || fold_char(c) == ' ' {
            i += 1;
            continue;
        }
        let next = |k: usize| chars.get(k).map(|&(_, c)| c);
        let (kind, stop) = if c.is_alphabetic() {
            let mut j = i + 1;
            let mut dotted = false;
            while let Some(d) = next(j) {
                let joined = is_apostrophe(d) || d == '-' || d == '.';
                if d.is_alphanumeric() {
                    j += 1;
                } else if joined && next(j + 1).is_some_and(char::is_alphanumeric) {
                    // A '.' inside a word only in abbreviations such as
                    // "a.m." or "U.S.": one letter either side.
                    if d == '.' && !(j - i == 1 || dotted) {
                        break;
                    }
                    dotted |= d == '.';
                    j += 2;
                } else if d == '.' && dotted {
                    j += 1;
                    break;
                } else {
                    break;
                }
            }
            (TokenKind::Word, j)
        } else if c.is_ascii_digit() {
            let mut j = i + 1;
            while let Some(d) = next(j) {
                if d.is_alphanumeric() {
                    j += 1;
                } else if matches!(d, '.' | ',' | ':')
                    && next(j + 1).is_some_and(|e| e.is_ascii_digit())
                {
                    j += 2;
                } else {
                    break;
                }
            }
            (TokenKind::Number, j)
        } else if is_symbol(c) {
            (TokenKind::Symbol, i + 1)
        } else if c == '<' || c == '{' {
            let close = if c == '<' { '>' } else { '}' };
            let found = (i + 1..chars.len().min(i + 200))
                .take_while(|&k| chars[k].1 != '\n')
                .find(|&k| chars[k].1 == close);
            match found {
                Some(k) => (TokenKind::Tag, k + 1),
                None => (TokenKind::Punct, i + 1),
            }
        } else if c == '.' && next(i + 1) == Some('.') && next(i + 2) == Some('.') {
            (TokenKind::Punct, i + 3)
        } else if c == '-' && next(i + 1) == Some('-') {
            (TokenKind::Punct, i + 2)
        } else {
            (TokenKind::Punct, i + 1)
        };
        let stop_byte = end_of(stop);
        let raw = &text[start..stop_byte];
        let key = if raw == "\u{2026}" {
            "...".to_string()
        } else {
            key_of(raw)
        };
        tokens.push(Token {
            kind,
            start,
            end: stop_byte,
            key,
        });
        i = stop;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.key).collect()
    }

    #[test]
    fn the_ascii_key_is_the_folded_lower_case() {
        let general = |text: &str| -> String {
            text.chars()
                .map(fold_char)
                .flat_map(char::to_lowercase)
                .collect()
        };
        let ascii: String = (0x20u8..0x7f).map(char::from).collect();
        for text in [
            ascii.as_str(),
            "U.S.",
            "Don't",
            "e-MAILS",
            "`quoted`",
            "Zoë",
        ] {
            assert_eq!(key_of(text), general(text), "{text}");
        }
    }

    #[test]
    fn words_numbers_and_punctuation() {
        assert_eq!(
            keys("Don’t pay 5% at 3:30 p.m., OK? It's 1,000 e-mails… <v Bob>U.S."),
            [
                "don't", "pay", "5", "%", "at", "3:30", "p.m.", ",", "ok", "?", "it's", "1,000",
                "e-mails", "...", "<v bob>", "u.s."
            ]
        );
        assert_eq!(
            keys("end. Next -- and—so"),
            ["end", ".", "next", "--", "and", "—", "so"]
        );
        assert_eq!(
            keys("“Quote,” she said."),
            ["\"", "quote", ",", "\"", "she", "said", "."]
        );
    }
}
