//! The two languages the bot answers in, and a cheap guess from the text itself.

use serde::{Deserialize, Serialize};

/// Chinese or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// Parses `en`, `zh`, `zh-CN`, `en-US` and similar tags.
    pub fn parse(tag: &str) -> Option<Self> {
        let t = tag.to_ascii_lowercase();
        if t == "zh" || t.starts_with("zh-") || t.starts_with("zh_") {
            Some(Self::Zh)
        } else if t == "en" || t.starts_with("en-") || t.starts_with("en_") {
            Some(Self::En)
        } else {
            None
        }
    }

    /// Chinese when the text has Han characters, else `None` (unknown: keep the current one
    /// unless the text is clearly Latin).
    pub fn detect(text: &str) -> Option<Self> {
        let han = text
            .chars()
            .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
            .count();
        let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
        if han > 0 {
            Some(Self::Zh)
        } else if latin >= 3 {
            Some(Self::En)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn detects_and_parses() {
        assert_eq!(Lang::detect("我的快递 where"), Some(Lang::Zh));
        assert_eq!(Lang::detect("where is my order"), Some(Lang::En));
        assert_eq!(Lang::detect("20231104-8812"), None);
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
    }
}
