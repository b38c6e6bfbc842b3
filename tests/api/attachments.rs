//! Photos (issue #9): a shopper attaches a JPEG or PNG to their conversation; it is stored,
//! shown in the transcript and the live events, and served back byte for byte to agents and
//! to that shopper with headers that keep it an image. Anything that is not a photo, is too
//! large or comes with the wrong token is refused with nothing stored; retries store once;
//! the same on PostgreSQL.

use std::path::PathBuf;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard::settings::Secret;

use crate::helpers::{
    ADMIN, PgDatabase, TestApp, assert_error, conv, create_agent_at, root, spawn_app,
    spawn_app_with,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/photos").join(name)).unwrap()
}

/// Uploads `bytes` to the conversation, declaring `content_type`, with optional query
/// parameters (`caption`, `client_message_id`).
async fn upload(
    app: &TestApp,
    (id, token): (&str, &str),
    bytes: Vec<u8>,
    content_type: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(format!(
            "{}/api/v1/conversations/{id}/attachments",
            app.base
        ))
        .query(query)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn fetch(app: &TestApp, url: &str, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{url}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A conversation with the bot for `customer`: `(id, token)`.
async fn start(app: &TestApp, customer: &str) -> (String, String) {
    conv(&app.say(customer, "hello", None).await)
}

async fn transcript(app: &TestApp, id: &str) -> Vec<Value> {
    let c: Value = app
        .get_conversation(id, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    c["messages"].as_array().unwrap().clone()
}

/// The files the embedded store keeps photos in.
fn stored_files(app: &TestApp) -> Vec<PathBuf> {
    match std::fs::read_dir(app.data_dir().join("attachments")) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

async fn create_agent(app: &TestApp, id: &str) -> String {
    create_agent_at(&app.client, &app.base, id, "Ann", 3).await
}

/// Checks that `resp` is exactly `bytes` as `content_type`, served so that it stays an image.
async fn assert_served_as_image(resp: reqwest::Response, bytes: &[u8], content_type: &str) {
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], content_type);
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("inline; filename=\"photo-"),
        "{disposition}"
    );
    assert!(h.contains_key("etag"));
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn a_photo_is_stored_shown_to_the_agent_and_served_back_byte_for_byte() {
    let app = spawn_app().await;
    let (id, token) = start(&app, "c-2001").await;
    let jpeg = fixture("broken-cup.jpg");

    // The declared type is not trusted either way: octet-stream is fine for a real JPEG.
    let resp = upload(
        &app,
        (&id, &token),
        jpeg.clone(),
        "application/octet-stream",
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let a: Value = resp.json().await.unwrap();
    let photo = &a["attachment"];
    assert_eq!(photo["content_type"], "image/jpeg", "{a}");
    assert_eq!(photo["size"], jpeg.len());
    let url = photo["url"].as_str().unwrap().to_string();
    assert_eq!(
        url,
        format!("/api/v1/attachments/{}", photo["id"].as_str().unwrap())
    );
    // A photo alone is not classified; the bot acknowledges it and offers a person.
    assert!(a.get("intent").is_none(), "{a}");
    assert_eq!(a["route"], "bot");
    assert_eq!(a["route_reason"], "attachment:acknowledged");
    assert_eq!(a["state"], "bot");
    assert!(
        a["replies"][0]["text"].as_str().unwrap().contains("photo"),
        "{a}"
    );
    assert_eq!(a["quick_replies"], json!(["I want to talk to a person"]));
    assert_eq!(a["replayed"], false);

    // The admin, an agent and the conversation's shopper get the same bytes back.
    let agent = create_agent(&app, "ann").await;
    for t in [ADMIN, agent.as_str(), token.as_str()] {
        assert_served_as_image(fetch(&app, &url, t).await, &jpeg, "image/jpeg").await;
    }
    // An <img> cannot send a header: the token may come as ?token=.
    let by_query = app
        .client
        .get(format!("{}{url}?token={token}", app.base))
        .send()
        .await
        .unwrap();
    assert_served_as_image(by_query, &jpeg, "image/jpeg").await;
    // A browser that has it revalidates without the bytes.
    let etag = fetch(&app, &url, ADMIN).await.headers()["etag"].clone();
    let again = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(ADMIN)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // A PNG declared as a JPEG is stored as what it is.
    let png = fixture("broken-cup.png");
    let b: Value = upload(
        &app,
        (&id, &token),
        png.clone(),
        "image/jpeg",
        &[("caption", "and from above")],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(b["attachment"]["content_type"], "image/png", "{b}");
    let png_url = b["attachment"]["url"].as_str().unwrap();
    assert_served_as_image(fetch(&app, png_url, &agent).await, &png, "image/png").await;

    // Both are shopper messages in the transcript, in the wire shape the console renders.
    let msgs = transcript(&app, &id).await;
    let photos: Vec<&Value> = msgs
        .iter()
        .filter(|m| m.get("attachment").is_some())
        .collect();
    assert_eq!(photos.len(), 2, "{msgs:?}");
    assert_eq!(photos[0]["author"], "shopper");
    assert_eq!(photos[0]["text"], "");
    assert_eq!(photos[0]["attachment"], *photo);
    assert_eq!(photos[1]["text"], "and from above");
    assert_eq!(photos[1]["attachment"]["size"], png.len());
    // Two files, one per photo, holding the bytes.
    let mut files: Vec<Vec<u8>> = stored_files(&app)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    files.sort_by_key(Vec::len);
    assert_eq!(files, [png.clone(), jpeg.clone()]);

    // The live events carry the same attachment object.
    let ws_url = format!(
        "{}/api/v1/conversations/{id}/events?token={token}&after=0",
        app.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap();
        let Ok(text) = frame.into_text() else {
            continue;
        };
        let ev: Value = serde_json::from_str(&text).unwrap();
        if ev["type"] == "message_added" && ev["data"]["message"].get("attachment").is_some() {
            seen.push(ev["data"]["message"]["attachment"].clone());
        }
    }
    assert_eq!(seen[0], *photo);
    assert_eq!(seen[1], b["attachment"]);
    app.stop().await;
}

#[tokio::test]
async fn anything_but_a_photo_is_refused_and_nothing_is_stored() {
    let app = spawn_app_with(|s| s.max_attachment_bytes = 64 * 1024).await;
    let (id, token) = start(&app, "c-2001").await;
    let before = transcript(&app, &id).await.len();
    let c = (id.as_str(), token.as_str());

    // A text file renamed .png and declared as one.
    let resp = upload(
        &app,
        c,
        b"this is not a picture\n".to_vec(),
        "image/png",
        &[],
    )
    .await;
    assert_eq!(resp.status(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("JPEG, PNG, GIF or WebP"), "{message}");
    // An SVG is an image to a browser, and a document that can run script: refused.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#;
    assert_error(
        upload(&app, c, svg.to_vec(), "image/svg+xml", &[]).await,
        415,
        "unsupported_media_type",
    )
    .await;
    // HTML behind a JPEG's name, a PDF, a multipart form: refused.
    assert_error(
        upload(
            &app,
            c,
            b"<html><script>alert(1)</script>".to_vec(),
            "image/jpeg",
            &[],
        )
        .await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        upload(&app, c, b"%PDF-1.7\n...".to_vec(), "application/pdf", &[]).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let form = upload(
        &app,
        c,
        b"--x\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\xFF\xD8\xFF\xE0\r\n--x--"
            .to_vec(),
        "multipart/form-data; boundary=x",
        &[],
    )
    .await;
    assert_eq!(form.status(), 415);
    assert!(form.text().await.unwrap().contains("not a multipart form"));
    // An image over the limit: a real JPEG header followed by 100 KB.
    let mut big = fixture("broken-cup.jpg");
    big.resize(100 * 1024, 0);
    let resp = upload(&app, c, big, "image/jpeg", &[]).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    assert!(
        body["message"].as_str().unwrap().contains("65536"),
        "{body}"
    );
    // Nothing at all, and a caption longer than a message may be.
    assert_error(
        upload(&app, c, Vec::new(), "image/png", &[]).await,
        422,
        "invalid_request",
    )
    .await;
    let long = "x".repeat(4001);
    assert_error(
        upload(
            &app,
            c,
            fixture("broken-cup.png"),
            "image/png",
            &[("caption", &long)],
        )
        .await,
        422,
        "invalid_request",
    )
    .await;
    assert_error(
        upload(
            &app,
            c,
            fixture("broken-cup.png"),
            "image/png",
            &[("client_message_id", "not ok!")],
        )
        .await,
        422,
        "invalid_request",
    )
    .await;
    assert_error(
        upload(
            &app,
            c,
            fixture("broken-cup.png"),
            "image/png",
            &[("colour", "red")],
        )
        .await,
        400,
        "bad_request",
    )
    .await;

    assert_eq!(transcript(&app, &id).await.len(), before);
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
    // A GIF and a WebP are photos too.
    for (name, t) in [
        ("broken-cup.gif", "image/gif"),
        ("broken-cup.webp", "image/webp"),
    ] {
        let r: Value = upload(&app, c, fixture(name), "application/octet-stream", &[])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["attachment"]["content_type"], t, "{r}");
    }
    app.stop().await;
}

#[tokio::test]
async fn only_the_conversation_and_agents_may_upload_or_see_its_photos() {
    let app = spawn_app().await;
    let (a, a_token) = start(&app, "c-2001").await;
    let (b, b_token) = start(&app, "c-2003").await;
    let jpeg = fixture("broken-cup.jpg");
    let before = transcript(&app, &a).await.len();

    // Another conversation's token, no token, the admin token.
    assert_error(
        upload(&app, (&a, &b_token), jpeg.clone(), "image/jpeg", &[]).await,
        403,
        "forbidden",
    )
    .await;
    let anonymous = app
        .client
        .post(format!("{}/api/v1/conversations/{a}/attachments", app.base))
        .body(jpeg.clone())
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    // The admin token is no shopper: it cannot post in a shopper's name.
    assert_error(
        upload(&app, (&a, ADMIN), jpeg.clone(), "image/jpeg", &[]).await,
        403,
        "forbidden",
    )
    .await;
    // A wrong token learns nothing about the body: the same refusal for a non-image.
    assert_error(
        upload(&app, (&a, &b_token), b"text".to_vec(), "text/plain", &[]).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(transcript(&app, &a).await.len(), before);
    assert!(stored_files(&app).is_empty());

    let photo: Value = upload(&app, (&a, &a_token), jpeg, "image/jpeg", &[])
        .await
        .json()
        .await
        .unwrap();
    let url = photo["attachment"]["url"].as_str().unwrap();
    assert_error(fetch(&app, url, &b_token).await, 403, "forbidden").await;
    assert_error(
        fetch(&app, url, "sba_not-a-real-agent-token").await,
        403,
        "forbidden",
    )
    .await;
    let no_token = app
        .client
        .get(format!("{}{url}", app.base))
        .send()
        .await
        .unwrap();
    assert_error(no_token, 401, "unauthorized").await;
    let missing = format!("/api/v1/attachments/{}", uuid::Uuid::new_v4());
    assert_error(fetch(&app, &missing, ADMIN).await, 404, "not_found").await;
    assert_error(
        fetch(&app, "/api/v1/attachments/not-an-id", ADMIN).await,
        404,
        "not_found",
    )
    .await;
    // Conversation b saw nothing of it.
    assert!(
        transcript(&app, &b)
            .await
            .iter()
            .all(|m| m.get("attachment").is_none())
    );
    app.stop().await;
}

/// Retries with the same `client_message_id`, one after the other and at once, store one
/// photo and one message; the key with another photo is refused.
async fn retries_store_once(app: &TestApp, files: bool) {
    let (id, token) = start(app, "c-2001").await;
    let c = (id.as_str(), token.as_str());
    let jpeg = fixture("broken-cup.jpg");
    let key = [("client_message_id", "photo-1")];
    let first: Value = upload(app, c, jpeg.clone(), "image/jpeg", &key)
        .await
        .json()
        .await
        .unwrap();
    let again = upload(app, c, jpeg.clone(), "image/jpeg", &key).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["attachment"], first["attachment"]);
    assert_eq!(again["replies"], first["replies"]);

    // Two at once: both answered with one photo.
    let key2 = [("client_message_id", "photo-2")];
    let png = fixture("broken-cup.png");
    let (x, y) = tokio::join!(
        upload(app, c, png.clone(), "image/png", &key2),
        upload(app, c, png.clone(), "image/png", &key2)
    );
    let (x, y): (Value, Value) = (x.json().await.unwrap(), y.json().await.unwrap());
    assert_eq!(x["attachment"], y["attachment"], "{x} {y}");

    let conflict = upload(app, c, png, "image/png", &key).await;
    assert_error(conflict, 409, "idempotency_key_reused").await;

    let photos: Vec<Value> = transcript(app, &id)
        .await
        .into_iter()
        .filter_map(|m| m.get("attachment").cloned())
        .collect();
    assert_eq!(
        photos,
        [first["attachment"].clone(), x["attachment"].clone()]
    );
    if files {
        assert_eq!(stored_files(app).len(), 2, "{:?}", stored_files(app));
    }
    for p in &photos {
        let resp = fetch(app, p["url"].as_str().unwrap(), ADMIN).await;
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn a_retried_upload_is_stored_once() {
    let app = spawn_app().await;
    retries_store_once(&app, true).await;
    app.stop().await;
}

#[tokio::test]
async fn a_captioned_photo_of_a_damaged_item_reaches_a_person_who_sees_it() {
    let app = spawn_app().await;
    let (id, token) = start(&app, "c-2001").await;
    let jpeg = fixture("broken-cup.jpg");
    let caption = [("caption", "The cup I received is broken, here is a photo")];
    let a: Value = upload(&app, (&id, &token), jpeg.clone(), "image/jpeg", &caption)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["route"], "human", "{a}");
    assert_eq!(a["state"], "waiting_for_human", "{a}");
    assert!(a["intent"]["name"].is_string(), "{a}");

    // While waiting, another photo is added to the conversation for the agent.
    let more: Value = upload(
        &app,
        (&id, &token),
        fixture("broken-cup.png"),
        "image/png",
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(more["route_reason"], "waiting_for_human", "{more}");

    // The queue previews the caption, not the empty text of the photo without one.
    let agent = create_agent(&app, "ann").await;
    let queue: Value = app
        .client
        .get(format!("{}/api/v1/agent/queue", app.base))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let preview = &queue["items"][0]["last_messages"];
    assert_eq!(
        preview[preview.as_array().unwrap().len() - 1],
        caption[0].1,
        "{queue}"
    );
    // The agent who claims it reads both photos in the transcript and can open them.
    let claimed: Value = app
        .client
        .post(format!("{}/api/v1/agent/claims", app.base))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msgs = claimed["conversation"]["messages"].as_array().unwrap();
    let photos: Vec<&Value> = msgs.iter().filter_map(|m| m.get("attachment")).collect();
    assert_eq!(photos.len(), 2, "{claimed}");
    assert_served_as_image(
        fetch(&app, photos[0]["url"].as_str().unwrap(), &agent).await,
        &jpeg,
        "image/jpeg",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn photos_work_on_postgresql_with_the_bytes_in_the_database() {
    let db = PgDatabase::create().await;
    let url = db.url.clone();
    let app = spawn_app_with(move |s| s.database_url = Some(Secret::new(url))).await;
    let (id, token) = start(&app, "c-2001").await;
    let png = fixture("broken-cup.png");
    let a: Value = upload(&app, (&id, &token), png.clone(), "image/png", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_served_as_image(
        fetch(&app, a["attachment"]["url"].as_str().unwrap(), &token).await,
        &png,
        "image/png",
    )
    .await;
    assert_error(
        upload(&app, (&id, &token), b"GIF8".to_vec(), "image/gif", &[]).await,
        415,
        "unsupported_media_type",
    )
    .await;
    retries_store_once(&app, false).await;
    // Nothing went to the data directory: instances share no disk.
    assert!(stored_files(&app).is_empty());
    app.stop().await;
}

/// The acknowledgement is in the conversation's language, and the person it offers is one
/// tap away: the quick reply it suggests hands the conversation off, with the photo in it.
#[tokio::test]
async fn the_offered_person_is_one_quick_reply_away_in_both_languages() {
    let app = spawn_app().await;
    for (customer, greeting, word) in [("c-1001", "你好", "照片"), ("c-2001", "hello", "photo")]
    {
        let (id, token) = conv(&app.say(customer, greeting, None).await);
        let a: Value = upload(
            &app,
            (&id, &token),
            fixture("broken-cup.webp"),
            "image/webp",
            &[],
        )
        .await
        .json()
        .await
        .unwrap();
        let reply = a["replies"][0]["text"].as_str().unwrap();
        assert!(reply.contains(word), "{reply}");
        let offer = a["quick_replies"][0].as_str().unwrap();
        let handed = app.say(customer, offer, Some((&id, &token))).await;
        assert_eq!(handed["state"], "waiting_for_human", "{offer}: {handed}");
        let photos = transcript(&app, &id)
            .await
            .iter()
            .filter(|m| m.get("attachment").is_some())
            .count();
        assert_eq!(photos, 1);
    }
    app.stop().await;
}
