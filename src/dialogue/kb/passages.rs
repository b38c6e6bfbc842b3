//! Splits an article's Markdown body into passages, the unit the bot retrieves and answers
//! with: a paragraph, a section under a bold heading (`**Heading**` on its own line, or
//! `**Heading:** text`), or a short list. Longer lists are split into one passage per item, each
//! keeping the list's heading, so that a question about one item gets that item.

/// Lists with more items than this are answered item by item.
const MAX_LIST_ITEMS: usize = 3;

/// One answerable piece of an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// Position in the article, from 0; stable while the article is unchanged.
    pub index: usize,
    /// The bold heading the passage sits under, without Markdown or a trailing colon.
    pub heading: Option<String>,
    /// The passage's Markdown text, without its heading.
    pub text: String,
}

impl Passage {
    /// The passage as plain text for the shopper: heading line, then text, without `**`.
    pub fn display(&self) -> String {
        let text = plain(&self.text);
        // Chinese headings take a full-width colon.
        let colon = if self
            .heading
            .as_deref()
            .is_some_and(|h| h.chars().any(|c| c > '\u{2e80}'))
        {
            "："
        } else {
            ": "
        };
        match &self.heading {
            Some(h) if !text.contains('\n') && !text.starts_with("- ") => {
                format!("{h}{colon}{text}")
            }
            Some(h) => format!("{h}\n{text}"),
            None => text,
        }
    }

    /// Whether `selector` names this passage: its number, its heading, or a piece of its text.
    pub fn matches(&self, selector: &str) -> bool {
        let s = selector.trim().to_lowercase();
        if s.is_empty() {
            return false;
        }
        if let Ok(n) = s.trim_start_matches('#').parse::<usize>() {
            return n == self.index;
        }
        self.has_heading(&s) || plain(&self.text).to_lowercase().contains(&s)
    }

    /// Whether the passage's heading is `selector` (ignoring case).
    pub fn has_heading(&self, selector: &str) -> bool {
        let s = selector.trim().to_lowercase();
        self.heading
            .as_deref()
            .is_some_and(|h| h.to_lowercase() == s)
    }
}

/// Removes bold markers.
pub fn plain(text: &str) -> String {
    text.replace("**", "")
}

/// A line that is only a bold heading: `**Domestic**` or `**What qualifies:**`.
fn heading_line(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix("**")?.strip_suffix("**")?;
    (!inner.contains("**")).then(|| clean_heading(inner))
}

/// A paragraph that opens with a bold lead-in: `**Return shipping:** free if …`.
fn lead_in(block: &str) -> Option<(String, String)> {
    let rest = block.strip_prefix("**")?;
    let (head, text) = rest.split_once("**")?;
    let text = text.trim_start_matches([':', '：']).trim();
    let head = clean_heading(head);
    (!text.is_empty() && !head.is_empty()).then(|| (head, text.to_string()))
}

fn clean_heading(h: &str) -> String {
    h.trim()
        .trim_end_matches([':', '：', '?', '？'])
        .trim()
        .to_string()
}

fn is_item(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("- ")
        || t.starts_with("* ")
        || t.split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Splits a body into passages, in reading order.
pub fn split(body: &str) -> Vec<Passage> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let mut pending: Option<String> = None;
    for block in body.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let mut lines: Vec<&str> = block.lines().collect();
        let mut heading = pending.take();
        if let Some(h) = lines.first().and_then(|l| heading_line(l)) {
            lines.remove(0);
            heading = Some(h);
            if lines.is_empty() {
                // A heading alone: it belongs to the block that follows.
                pending = heading;
                continue;
            }
        }
        let text = lines.join("\n");
        if let Some((h, rest)) = lead_in(&text).filter(|_| heading.is_none()) {
            out.push((Some(h), rest));
            continue;
        }
        let items = items(&lines);
        if items.len() > MAX_LIST_ITEMS {
            for item in items {
                // An item with its own bold lead-in ("- **Damaged box:** …") is headed by it.
                let bare = item.trim_start_matches(['-', '*']).trim_start();
                match lead_in(bare) {
                    Some((h, t)) => out.push((Some(h), t)),
                    None => out.push((heading.clone(), item)),
                }
            }
        } else {
            out.push((heading, text));
        }
    }
    if let Some(h) = pending {
        out.push((None, h));
    }
    out.into_iter()
        .enumerate()
        .map(|(index, (heading, text))| Passage {
            index,
            heading,
            text,
        })
        .collect()
}

/// The items of a list block (continuation lines stay with their item); empty when the
/// block is not purely a list.
fn items(lines: &[&str]) -> Vec<String> {
    if !lines.first().is_some_and(|l| is_item(l)) {
        return Vec::new();
    }
    let mut items: Vec<String> = Vec::new();
    for line in lines {
        if is_item(line) {
            items.push(line.trim().to_string());
        } else if let Some(last) = items.last_mut() {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paragraphs_sections_and_long_lists() {
        let body = "Opening answer.\n\n**What qualifies**\n- a\n- b\n\n**Return shipping:** free if faulty.\n\n**Good to know**\n\n- 1\n- 2\n- 3\n- 4\n- 5\n\nClosing.";
        let p = split(body);
        let shape: Vec<(Option<&str>, &str)> = p
            .iter()
            .map(|p| (p.heading.as_deref(), p.text.as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (None, "Opening answer."),
                (Some("What qualifies"), "- a\n- b"),
                (Some("Return shipping"), "free if faulty."),
                (Some("Good to know"), "- 1"),
                (Some("Good to know"), "- 2"),
                (Some("Good to know"), "- 3"),
                (Some("Good to know"), "- 4"),
                (Some("Good to know"), "- 5"),
                (None, "Closing."),
            ]
        );
        assert_eq!(p[2].display(), "Return shipping: free if faulty.");
        assert_eq!(p[1].display(), "What qualifies\n- a\n- b");
        assert!(p[2].matches("return shipping"));
        assert!(p[2].matches("#2"));
        assert!(p[0].matches("opening"));
        assert!(!p[0].matches("closing"));
    }

    #[test]
    fn chinese_lead_in_with_full_width_colon() {
        let p = split("**会员权益**：VIP会员免费特快配送。");
        assert_eq!(p[0].heading.as_deref(), Some("会员权益"));
        assert_eq!(p[0].text, "VIP会员免费特快配送。");
        assert_eq!(p[0].display(), "会员权益：VIP会员免费特快配送。");
    }
}
