//! Order tracking: finding an order number in free text and describing an order's status.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::domain::{Lang, Order, OrderId, OrderStatus};

static ORDER_NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9])([0-9]{8})\s*[-–—_]\s*([0-9]{4})(?:$|[^0-9])").expect("valid regex")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}").expect("valid regex")
});
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?[0-9][0-9 ()\-]{5,}[0-9]").expect("valid regex"));

/// Candidate contact details an anonymous shopper wrote: emails, phone numbers (digits only)
/// and postcode-like tokens (upper-case, no spaces). The order number itself is not one.
struct Contacts {
    emails: Vec<String>,
    phones: Vec<String>,
    postcodes: Vec<String>,
}

/// At most this many candidates of each kind count, so that a message stuffed with numbers
/// cannot try a whole range of postcodes or phone numbers at once.
const MAX_CANDIDATES: usize = 3;

fn contacts(text: &str) -> Contacts {
    let norm: String = text.chars().take(4096).collect::<String>().nfkc().collect();
    let norm = ORDER_NO.replace_all(&norm, " ").to_lowercase();
    let emails: Vec<String> = EMAIL
        .find_iter(&norm)
        .take(MAX_CANDIDATES)
        .map(|m| m.as_str().to_string())
        .collect();
    let without_emails = EMAIL.replace_all(&norm, " ");
    let phones: Vec<String> = PHONE
        .find_iter(&without_emails)
        .map(|m| digits(m.as_str()))
        .filter(|d| d.len() >= 8)
        .take(MAX_CANDIDATES)
        .collect();
    let tokens: Vec<String> = without_emails
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let is_code = |t: &str| (3..=10).contains(&t.len()) && t.chars().any(|c| c.is_ascii_digit());
    let mut postcodes: Vec<String> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if is_code(t) {
            postcodes.push(t.clone());
        }
        // Two-part codes such as "SW1A 1AA" or "M5V 3L9".
        if let Some(next) = tokens.get(i + 1) {
            let joined = format!("{t}{next}");
            if is_code(&joined) && t.len() <= 4 && next.len() <= 4 {
                postcodes.push(joined);
            }
        }
    }
    postcodes.truncate(MAX_CANDIDATES * 2);
    Contacts {
        emails,
        phones,
        postcodes,
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Whether the text offers something that could be a contact detail (to route an anonymous
/// shopper's answer back to tracking).
pub fn has_contact_factor(text: &str) -> bool {
    let c = contacts(text);
    !(c.emails.is_empty() && c.phones.is_empty() && c.postcodes.is_empty())
}

/// Whether the text names the order's email, phone number (with or without country code) or
/// delivery postcode: the second factor an anonymous shopper must give.
pub fn matches_contact(order: &Order, text: &str) -> bool {
    let c = contacts(text);
    let email = order.email.as_deref().map(|e| e.trim().to_lowercase());
    if email.is_some_and(|e| !e.is_empty() && c.emails.contains(&e)) {
        return true;
    }
    let phone = order.phone.as_deref().map(digits).unwrap_or_default();
    if phone.len() >= 8
        && c.phones
            .iter()
            .any(|p| phone.ends_with(p.as_str()) || p.ends_with(phone.as_str()))
    {
        return true;
    }
    let postcode: String = order
        .postcode
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    postcode.len() >= 3 && c.postcodes.contains(&postcode)
}

/// The first order number in the text ("it's 20231104-8812", "订单号是２０２３１１０４－８８１２").
pub fn extract_order_id(text: &str) -> Option<OrderId> {
    // NFKC turns full-width digits and dashes into ASCII ones.
    let norm: String = text.chars().take(4096).collect::<String>().nfkc().collect();
    let caps = ORDER_NO.captures(&norm)?;
    OrderId::parse(&format!("{}-{}", &caps[1], &caps[2])).ok()
}

fn status_text(s: OrderStatus, lang: Lang) -> &'static str {
    use OrderStatus::*;
    match (s, lang) {
        (Placed, Lang::En) => "placed and awaiting payment",
        (Paid, Lang::En) => "paid and being prepared for shipping",
        (Shipped, Lang::En) => "shipped",
        (InTransit, Lang::En) => "in transit",
        (OutForDelivery, Lang::En) => "out for delivery",
        (Delivered, Lang::En) => "delivered",
        (Cancelled, Lang::En) => "cancelled",
        (Returned, Lang::En) => "returned",
        (Placed, Lang::Zh) => "已下单，待付款",
        (Paid, Lang::Zh) => "已付款，正在备货",
        (Shipped, Lang::Zh) => "已发货",
        (InTransit, Lang::Zh) => "运输中",
        (OutForDelivery, Lang::Zh) => "派送中",
        (Delivered, Lang::Zh) => "已签收",
        (Cancelled, Lang::Zh) => "已取消",
        (Returned, Lang::Zh) => "已退货",
    }
}

/// A tracking answer: status, carrier and tracking number, last event and ETA.
pub fn describe(order: &Order, lang: Lang) -> String {
    let status = status_text(order.status, lang);
    let mut parts = Vec::new();
    match lang {
        Lang::En => {
            parts.push(format!("Order {} is {status}.", order.order_id));
            if let (Some(c), Some(t)) = (&order.carrier, &order.tracking_number) {
                parts.push(format!("Carrier: {c}, tracking number {t}."));
            }
            if let Some(e) = &order.last_event {
                let place = e
                    .location
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                parts.push(format!(
                    "Latest update {}: {}{place}.",
                    e.at.format("%Y-%m-%d %H:%M UTC"),
                    e.description.trim_end_matches('.')
                ));
            }
            if let Some(eta) = order.eta
                && !matches!(
                    order.status,
                    OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::Returned
                )
            {
                parts.push(format!("Estimated delivery: {}.", eta.format("%Y-%m-%d")));
            }
        }
        Lang::Zh => {
            parts.push(format!("您的订单 {} 当前状态：{status}。", order.order_id));
            if let (Some(c), Some(t)) = (&order.carrier, &order.tracking_number) {
                parts.push(format!("承运商：{c}，运单号：{t}。"));
            }
            if let Some(e) = &order.last_event {
                let desc = e.description_zh.as_deref().unwrap_or(&e.description);
                let place = e
                    .location
                    .as_deref()
                    .map(|l| format!("（{l}）"))
                    .unwrap_or_default();
                parts.push(format!(
                    "最新动态 {}：{}{place}。",
                    e.at.format("%Y-%m-%d %H:%M UTC"),
                    desc.trim_end_matches('。')
                ));
            }
            if let Some(eta) = order.eta
                && !matches!(
                    order.status,
                    OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::Returned
                )
            {
                parts.push(format!("预计送达：{}。", eta.format("%Y-%m-%d")));
            }
        }
    }
    parts.join(if lang == Lang::Zh { "" } else { " " })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CustomerId;

    fn order(email: &str, phone: &str, postcode: &str) -> Order {
        Order {
            order_id: OrderId::parse("20261119-5508").unwrap(),
            customer_id: CustomerId::parse("c-2001").unwrap(),
            status: OrderStatus::InTransit,
            carrier: None,
            tracking_number: None,
            placed_at: chrono::Utc::now(),
            eta: None,
            currency: None,
            total_cents: None,
            items: Vec::new(),
            last_event: None,
            email: Some(email.into()),
            phone: Some(phone.into()),
            postcode: Some(postcode.into()),
        }
    }

    #[test]
    fn second_factor_matches_only_the_orders_details() {
        let o = order("Ann.Lee@example.com", "+1 415 555 0107", "SW1A 1AA");
        for (text, expect) in [
            ("my email is ann.lee@example.com", true),
            ("ANN.LEE@EXAMPLE.COM", true),
            ("ann.lee@example.co", false),
            ("phone 415-555-0107", true),
            ("+14155550107", true),
            ("555 0107", false),
            ("postcode sw1a 1aa", true),
            ("SW1A1AA", true),
            ("SW1A 1AB", false),
            ("order 20261119-5508", false),
            ("", false),
            // A message stuffed with guesses only gets its first few tried.
            ("1000 1001 1002 1003 1004 1005 1006 SW1A 1AA", false),
        ] {
            assert_eq!(matches_contact(&o, text), expect, "{text}");
        }
        let zh = order("liwei1@example.cn", "+86 138 1037 2091", "310012");
        assert!(matches_contact(&zh, "订单20261102-4417，邮编310012"));
        assert!(matches_contact(&zh, "手机13810372091"));
        assert!(!matches_contact(&zh, "邮编310013"));
        assert!(has_contact_factor("邮编310012"));
        assert!(!has_contact_factor("where is order 20261102-4417"));
        assert!(!has_contact_factor("hello there"));
    }

    #[test]
    fn extracts_order_numbers_from_free_text() {
        for (text, expect) in [
            ("it's 20231104-8812", Some("20231104-8812")),
            ("订单号是 20240312-0057 谢谢", Some("20240312-0057")),
            ("订单号是２０２４０３１２－００５７", Some("20240312-0057")),
            ("order 20231104 - 8812 please", Some("20231104-8812")),
            ("call me on 13800138000", None),
            ("120231104-88123", None),
            ("", None),
        ] {
            assert_eq!(
                extract_order_id(text).as_ref().map(OrderId::as_str),
                expect,
                "{text}"
            );
        }
    }
}
