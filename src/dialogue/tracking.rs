//! Order tracking: finding an order number in free text and describing an order's status.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::domain::{Lang, Order, OrderId, OrderStatus};

static ORDER_NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9])([0-9]{8})\s*[-–—_]\s*([0-9]{4})(?:$|[^0-9])").expect("valid regex")
});

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
