//! The shopper-facing web assets: the embeddable chat widget (`/widget.js`) and the demo shop
//! page at `/` that embeds it. The files under `web/` are compiled into the binary, so the
//! service needs nothing beside it to serve them.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_http::cors::CorsLayer;

use super::AppState;
use crate::domain::CustomerId;
use crate::settings::Settings;

const WIDGET_JS: &str = include_str!("../../web/widget/widget.js");
const DEMO_HTML: &str = include_str!("../../web/demo/index.html");

/// The routes of the widget and the demo shop.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(demo_page))
        .route("/widget.js", get(widget_js))
}

/// The CORS layer that lets the configured shop origins call the API from the widget; `None`
/// without configured origins (same-origin pages need none).
pub fn cors(settings: &Settings) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(3600))
    })
}

/// A strong validator of the widget's bytes, so browsers revalidate cheaply after `max-age`.
fn widget_etag() -> &'static str {
    static ETAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ETAG.get_or_init(|| {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(WIDGET_JS.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

/// The widget script. Shops embed it by a fixed URL, so it is cached briefly and revalidated
/// by its ETag rather than cached forever.
async fn widget_js(headers: HeaderMap) -> Response {
    let etag = widget_etag();
    let cache = [
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::ETAG, etag),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        cache,
        WIDGET_JS,
    )
        .into_response()
}

/// A demo shopper the page can sign in as.
struct DemoCustomer {
    id: &'static str,
    name: &'static str,
    lang: Lang,
    note: &'static str,
}

const DEMO_CUSTOMERS: &[DemoCustomer] = &[
    DemoCustomer {
        id: "c-2001",
        name: "Emily Carter",
        lang: Lang::En,
        note: "",
    },
    DemoCustomer {
        id: "c-2003",
        name: "Sofia Rossi",
        lang: Lang::En,
        note: "",
    },
    DemoCustomer {
        id: "c-2004",
        name: "Daniel Kim",
        lang: Lang::En,
        note: "VIP",
    },
    DemoCustomer {
        id: "c-1001",
        name: "Li Wei 李伟",
        lang: Lang::Zh,
        note: "VIP",
    },
    DemoCustomer {
        id: "c-1003",
        name: "Wang Fang 王芳",
        lang: Lang::Zh,
        note: "",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Zh,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::Zh)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first supported language of an `Accept-Language` header, in its order.
    fn from_accept(headers: &HeaderMap) -> Option<Self> {
        let v = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
        v.split(',')
            .filter_map(|part| Lang::parse(part.split(';').next().unwrap_or("")))
            .next()
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    /// A demo customer id, or `anonymous`.
    customer: Option<String>,
    lang: Option<String>,
}

/// The page's texts in each language.
struct Texts {
    title: &'static str,
    tagline: &'static str,
    nav: [&'static str; 3],
    hero_title: &'static str,
    hero_text: &'static str,
    demo_label: &'static str,
    signed_in: &'static str,
    anonymous: &'static str,
    lang_label: &'static str,
    switch: &'static str,
    try_asking: &'static str,
    /// A tracking question; `{order}` is replaced by an order number.
    order_question: &'static str,
    handoff_question: &'static str,
    no_identity: &'static str,
    products: [(&'static str, &'static str); 4],
    footer: &'static str,
    widget_title: &'static str,
}

const EN: Texts = Texts {
    title: "Lantern & Leaf",
    tagline: "Home goods, audio and small joys",
    nav: ["New in", "Audio", "Home"],
    hero_title: "Autumn essentials, delivered fast",
    hero_text: "Questions about an order, a return or a product? Our assistant answers in \
                seconds, day and night, and hands you to a person whenever you ask.",
    demo_label: "Demo shopper",
    signed_in: "Signed in as",
    anonymous: "Anonymous visitor",
    lang_label: "Language",
    switch: "Switch",
    try_asking: "Try asking the chat (bottom right):",
    order_question: "Where is my order {order}?",
    handoff_question: "I want to talk to a person",
    no_identity: "Identity verification is not configured, so the chat is anonymous.",
    products: [
        ("Aurora headphones", "¥1,299"),
        ("Halo desk lamp", "¥499"),
        ("Linen throw", "¥359"),
        ("Stoneware mug set", "¥189"),
    ],
    footer: "A demo shop for Switchboard. No real orders are placed.",
    widget_title: "Lantern & Leaf support",
};

const ZH: Texts = Texts {
    title: "灯叶小铺",
    tagline: "家居、音频与生活小确幸",
    nav: ["新品", "音频", "家居"],
    hero_title: "秋季必备，极速送达",
    hero_text: "订单、退货或商品有疑问？智能客服全天候秒回，随时可以转人工。",
    demo_label: "演示顾客",
    signed_in: "当前登录",
    anonymous: "匿名访客",
    lang_label: "语言",
    switch: "切换",
    try_asking: "试着在右下角的聊天窗口里问：",
    order_question: "我的订单 {order} 到哪了？",
    handoff_question: "我要找人工客服",
    no_identity: "未配置身份验证，聊天以匿名方式进行。",
    products: [
        ("Aurora 降噪耳机", "¥1,299"),
        ("Halo 台灯", "¥499"),
        ("亚麻盖毯", "¥359"),
        ("粗陶马克杯套装", "¥189"),
    ],
    footer: "Switchboard 演示商店，不会产生真实订单。",
    widget_title: "灯叶小铺客服",
};

/// Escapes text for HTML element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The demo orders of a customer, read from the demo folder so the hint names a real one.
async fn demo_orders(settings: &Settings, customer: &str) -> Vec<String> {
    let Some(dir) = &settings.demo_dir else {
        return Vec::new();
    };
    let Ok(bytes) = tokio::fs::read(dir.join("orders.json")).await else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Array(orders)) = serde_json::from_slice(&bytes) else {
        return Vec::new();
    };
    orders
        .iter()
        .filter(|o| o["customer_id"] == customer)
        .filter_map(|o| o["order_id"].as_str().map(str::to_string))
        .collect()
}

/// The demo shop. In demo mode it signs the chosen demo customer server-side, as a shop's
/// backend would, and offers a switcher between demo customers and an anonymous visitor.
async fn demo_page(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let demo = state.settings.demo_dir.is_some();
    let chosen = match q.customer.as_deref() {
        Some("anonymous") => None,
        Some(id) => DEMO_CUSTOMERS.iter().find(|c| c.id == id),
        None => None,
    };
    let lang = q
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .or(chosen.map(|c| c.lang))
        .or_else(|| Lang::from_accept(&headers))
        .unwrap_or(Lang::En);
    // Without a choice the page signs in the first demo shopper of its language.
    let chosen = if q.customer.is_none() && demo {
        DEMO_CUSTOMERS.iter().find(|c| c.lang == lang)
    } else if demo {
        chosen
    } else {
        None
    };
    let t = if lang == Lang::Zh { &ZH } else { &EN };
    let signed = chosen.and_then(|c| {
        let id = CustomerId::parse(c.id).ok()?;
        state.identity.sign(&id).map(|h| (c, h))
    });

    let identity_attrs = match &signed {
        Some((c, hash)) => format!(
            r#" data-customer-id="{}" data-customer-hash="{}""#,
            esc(c.id),
            esc(hash)
        ),
        None => String::new(),
    };

    let mut switcher = String::new();
    if demo {
        let mut options = String::new();
        for c in DEMO_CUSTOMERS {
            let label = if c.note.is_empty() {
                format!("{} · {} · {}", c.name, c.id, c.lang.code())
            } else {
                format!("{} · {} · {} · {}", c.name, c.id, c.lang.code(), c.note)
            };
            let sel = if signed.as_ref().is_some_and(|(s, _)| s.id == c.id) {
                " selected"
            } else {
                ""
            };
            options.push_str(&format!(
                r#"<option value="{}"{sel}>{}</option>"#,
                esc(c.id),
                esc(&label)
            ));
        }
        let anon_sel = if signed.is_none() { " selected" } else { "" };
        options.push_str(&format!(
            r#"<option value="anonymous"{anon_sel}>{}</option>"#,
            esc(t.anonymous)
        ));
        let lang_options: String = [(Lang::En, "English"), (Lang::Zh, "中文")]
            .iter()
            .map(|(l, name)| {
                let sel = if *l == lang { " selected" } else { "" };
                format!(r#"<option value="{}"{sel}>{name}</option>"#, l.code())
            })
            .collect();
        switcher = format!(
            r#"<form class="demo" method="get" action="/"><span class="demo-tag">{demo_label}</span><label>{signed_in} <select name="customer">{options}</select></label><label>{lang_label} <select name="lang">{lang_options}</select></label><button type="submit">{switch}</button></form>"#,
            demo_label = esc(t.demo_label),
            signed_in = esc(t.signed_in),
            lang_label = esc(t.lang_label),
            switch = esc(t.switch),
        );
    }

    let mut hints = String::new();
    if let Some((c, _)) = &signed {
        for order in demo_orders(&state.settings, c.id).await.iter().take(1) {
            hints.push_str(&format!(
                "<li><q>{}</q></li>",
                esc(&t.order_question.replace("{order}", order))
            ));
        }
    } else if chosen.is_some() || (demo && !state.identity.is_configured()) {
        hints.push_str(&format!("<li>{}</li>", esc(t.no_identity)));
    }
    hints.push_str(&format!("<li><q>{}</q></li>", esc(t.handoff_question)));

    let products: String = t
        .products
        .iter()
        .enumerate()
        .map(|(i, (name, price))| {
            format!(
                r#"<article class="product p{i}"><div class="art" aria-hidden="true"></div><h3>{}</h3><p>{}</p></article>"#,
                esc(name),
                esc(price)
            )
        })
        .collect();

    let html = DEMO_HTML
        .replace("{{lang}}", lang.code())
        .replace("{{title}}", &esc(t.title))
        .replace("{{tagline}}", &esc(t.tagline))
        .replace("{{nav0}}", &esc(t.nav[0]))
        .replace("{{nav1}}", &esc(t.nav[1]))
        .replace("{{nav2}}", &esc(t.nav[2]))
        .replace("{{hero_title}}", &esc(t.hero_title))
        .replace("{{hero_text}}", &esc(t.hero_text))
        .replace("{{try_asking}}", &esc(t.try_asking))
        .replace("{{footer}}", &esc(t.footer))
        .replace("{{widget_title}}", &esc(t.widget_title))
        .replace("{{switcher}}", &switcher)
        .replace("{{hints}}", &hints)
        .replace("{{products}}", &products)
        .replace("{{identity}}", &identity_attrs);
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widget_stays_small_and_never_parses_markup() {
        // Uncompressed under 60 KB guarantees the gzipped budget with room to spare.
        assert!(WIDGET_JS.len() < 60 * 1024, "{} bytes", WIDGET_JS.len());
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!WIDGET_JS.contains(sink), "the widget uses {sink}");
        }
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn accept_language_picks_the_first_supported() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-FR, zh-CN;q=0.8, en;q=0.5"),
        );
        assert_eq!(Lang::from_accept(&h), Some(Lang::Zh));
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("de"));
        assert_eq!(Lang::from_accept(&h), None);
    }

    #[test]
    fn every_placeholder_of_the_page_is_one_the_handler_fills() {
        let filled = [
            "lang",
            "title",
            "tagline",
            "nav0",
            "nav1",
            "nav2",
            "hero_title",
            "hero_text",
            "try_asking",
            "footer",
            "widget_title",
            "switcher",
            "hints",
            "products",
            "identity",
        ];
        let mut rest = DEMO_HTML;
        while let Some(start) = rest.find("{{") {
            let end = rest[start..].find("}}").expect("placeholder closes") + start;
            let key = &rest[start + 2..end];
            assert!(filled.contains(&key), "{key} is never filled");
            rest = &rest[end + 2..];
        }
    }
}
