//! Text normalisation at the edge: what a shopper, agent or import writes is stored without
//! NUL and other control characters (newline and tab stay) and without the bidirectional
//! override/isolate characters that can make a transcript read differently from what it says
//! ("Trojan Source").

/// True for characters that are removed from stored text.
fn is_unwanted(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        // Bidirectional embeddings, overrides and isolates.
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        c => c.is_control(),
    }
}

/// The text without control and bidi-override characters; `\r\n` and lone `\r` become `\n`.
pub fn clean(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    unified.chars().filter(|c| !is_unwanted(*c)).collect()
}

/// A single-line value (a name): like [`clean`], with newlines and tabs turned into spaces and
/// the ends trimmed.
pub fn clean_line(text: &str) -> String {
    clean(text)
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A short machine name (channel, team, resolution code): 1 to `max` of `[a-z0-9_-]`.
pub fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        assert_eq!(clean(input), expect, "{input:?}");
    }

    #[test]
    fn removes_controls_and_bidi_overrides() {
        check("hello", "hello");
        check("a\0b", "ab");
        check("line1\r\nline2\rline3", "line1\nline2\nline3");
        check("tab\there", "tab\there");
        check("\u{7}bell\u{1b}[31m", "bell[31m");
        check("abc\u{202E}fed\u{202C}", "abcfed");
        check("\u{2066}x\u{2069}", "x");
        check("退货\u{0}政策", "退货政策");
        // Zero-width joiners in emoji and right-to-left letters are text, not controls.
        check("👩\u{200D}💻 مرحبا", "👩\u{200D}💻 مرحبا");
        check("\u{85}next", "next");
        assert_eq!(clean_line(" Ann\nLee\t "), "Ann Lee");
        assert!(is_slug("refunds_2-b", 32) && !is_slug("Refunds", 32) && !is_slug("", 32));
    }
}
