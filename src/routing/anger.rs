//! Cheap lexical signs that a shopper is upset, independent of the classifier: shouting,
//! insults and explicit threats of complaints or bad reviews.

const EN_CUES: [&str; 14] = [
    "ridiculous",
    "unacceptable",
    "scam",
    "fraud",
    "worst",
    "disgusting",
    "furious",
    "lawyer",
    "sue you",
    "report you",
    "consumer protection",
    "bad review",
    "wtf",
    "useless",
];
const ZH_CUES: [&str; 12] = [
    "投诉",
    "差评",
    "骗子",
    "垃圾",
    "太差",
    "气死",
    "12315",
    "消协",
    "报警",
    "坑人",
    "退一赔三",
    "无语",
];

/// True when the text shows clear signs of anger.
pub fn is_upset(text: &str) -> bool {
    let lower = text.to_lowercase();
    if EN_CUES.iter().any(|c| lower.contains(c)) || ZH_CUES.iter().any(|c| text.contains(c)) {
        return true;
    }
    // Shouting: several all-caps words of two or more letters.
    let shouted = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_uppercase()))
        .count();
    shouted >= 3
}

#[cfg(test)]
mod tests {
    use super::is_upset;

    #[test]
    fn anger_cues() {
        for (text, expect) in [
            ("where is my order", false),
            ("WHERE IS MY ORDER", true),
            ("this is a scam", true),
            ("I got a DHL tracking number", false),
            ("我要给差评", true),
            ("你好", false),
            ("thanks!!!", false),
        ] {
            assert_eq!(is_upset(text), expect, "{text}");
        }
    }
}
