//! The storage contract. Every function here runs against both backends — the embedded
//! SQLite store and PostgreSQL (a fresh database per test) — through the `Store` traits only:
//! turns and idempotency, conflicts, customers, orders, agents, claims and capacity, the
//! queue queries, ratings and the event log, including what concurrent writers may and may
//! not do.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use switchboard::domain::{
    Agent, AgentId, AgentStatus, Attachment, AttachmentId, Author, Conversation, ConversationId,
    ConversationState, Customer, CustomerId, EventKind, HandoffTicket, ImageType, Lang, NewEvent,
    NewMessage, Slots, Tier,
};
use switchboard::store::backend::Backend;
use switchboard::store::channels::{Attempt, InboundRecord, OutboxState};
#[allow(unused_imports)]
use switchboard::store::{
    AgentStore, AttachmentStore, ConversationStore, CustomerStore, EventFilter, EventStore,
    OrderStore,
};
use switchboard::store::{IdempotencyRecord, Store, StoreError, Turn};

use crate::helpers::{PgDatabase, root};

fn conversation(customer: &CustomerId) -> Conversation {
    // Both backends keep microseconds.
    let now = Utc::now().trunc_subsecs(6);
    Conversation {
        id: ConversationId::new(),
        customer_id: customer.clone(),
        verified: true,
        channel: "api".into(),
        lang: Lang::Zh,
        state: ConversationState::Bot,
        slots: Slots {
            awaiting_order_number: true,
            misses: 1,
            pending_order: None,
        },
        created_at: now,
        updated_at: now,
        handoff_reason: None,
        handoff_intent: None,
        handoff_at: None,
        version: 0,
        ticket: None,
        agent_id: None,
        assigned_at: None,
        first_response_at: None,
        resolution: None,
        csat_score: None,
    }
}

fn message(author: Author, text: &str) -> NewMessage {
    NewMessage {
        author,
        text: text.into(),
        at: Utc::now().trunc_subsecs(6),
        channel: "api".into(),
        intent: Some("greeting".into()),
        confidence: Some(0.75),
        out_of_scope: Some(false),
        alternatives: vec![],
        route: None,
        client_message_id: None,
        agent_id: None,
        private: false,
        attachment: None,
    }
}

async fn turns_are_atomic_and_idempotent(store: Arc<dyn Store>) {
    let customer = CustomerId::parse("c-9").unwrap();
    let mut conv = conversation(&customer);
    let idem = IdempotencyRecord {
        scope: format!("customer:{customer}"),
        client_message_id: "k1".into(),
        request_hash: "f00d".into(),
        conversation_id: conv.id,
        response: serde_json::json!({"answer": 1}),
    };
    let turn = Turn {
        conversation: conv.clone(),
        is_new: true,
        messages: vec![
            message(Author::Shopper, "你好"),
            message(Author::Bot, "您好"),
        ],
        idempotency: Some(idem.clone()),
        expected_version: 0,
        events: vec![],
        capacity_guard: None,
    };
    store.record_turn(&turn).await.unwrap();
    assert_eq!(store.conversation(conv.id).await.unwrap().unwrap(), conv);
    let msgs = store.messages(conv.id).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].body.text, "你好");
    assert_eq!(msgs[1].body.author, Author::Bot);
    assert_eq!(
        store
            .idempotent(&format!("customer:{customer}"), "k1")
            .await
            .unwrap()
            .unwrap(),
        idem
    );

    // The same key again writes nothing at all, not even the conversation update.
    conv.state = ConversationState::WaitingForHuman;
    let again = Turn {
        conversation: conv.clone(),
        is_new: false,
        ..turn.clone()
    };
    assert!(matches!(
        store.record_turn(&again).await,
        Err(StoreError::DuplicateKey)
    ));
    assert_eq!(store.messages(conv.id).await.unwrap().len(), 2);
    assert_eq!(
        store.conversation(conv.id).await.unwrap().unwrap().state,
        ConversationState::Bot
    );

    // An update without a key goes through.
    let update = Turn {
        messages: vec![message(Author::Shopper, "?")],
        ..Turn::update(conv.clone())
    };
    let committed = store.record_turn(&update).await.unwrap();
    assert_eq!(committed.message_ids.len(), 1);
    // The same change computed from the old version again is a conflict: nothing written.
    assert!(matches!(
        store.record_turn(&update).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.conversation(conv.id).await.unwrap().unwrap().version,
        1
    );
    // Every stored message is also an event, in order.
    let events = store
        .events_after(&switchboard::store::EventFilter::Shopper(conv.id), 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.conversation(conv.id).await.unwrap().unwrap().state,
        ConversationState::WaitingForHuman
    );
    assert_eq!(store.messages(conv.id).await.unwrap().len(), 3);
    assert!(
        store
            .conversation(ConversationId::new())
            .await
            .unwrap()
            .is_none()
    );
}

async fn customers_upsert(store: Arc<dyn Store>) {
    let mut c = Customer::unknown(CustomerId::parse("c-7").unwrap(), Lang::En);
    c.tier = Tier::Gold;
    c.tags = vec!["x".into()];
    store
        .upsert_customers(std::slice::from_ref(&c))
        .await
        .unwrap();
    c.complaints_90d = 3;
    store
        .upsert_customers(std::slice::from_ref(&c))
        .await
        .unwrap();
    assert_eq!(store.customer(&c.id).await.unwrap().unwrap(), c);
    assert_eq!(store.customer_count().await.unwrap(), 1);
}

fn agent(id: &str, capacity: u32) -> Agent {
    Agent {
        id: AgentId::parse(id).unwrap(),
        name: format!("Agent {id}"),
        languages: vec![Lang::En, Lang::Zh],
        teams: vec!["general".into()],
        capacity,
        status: AgentStatus::Online,
        created_at: Utc::now().trunc_subsecs(6),
        last_seen_at: None,
    }
}

fn ticket(team: &str, due_in_minutes: i64) -> HandoffTicket {
    HandoffTicket {
        reason_code: "ask_for_human".into(),
        tier: "regular".into(),
        priority: 1,
        sla_due: (Utc::now() + Duration::minutes(due_in_minutes)).trunc_subsecs(6),
        sla_seconds: due_in_minutes * 60,
        team: team.into(),
        lang: Lang::En,
        signals: vec![],
        breached_at: None,
    }
}

/// Stores a new conversation waiting for a human in `team`.
async fn waiting_conversation(
    store: &dyn Store,
    customer: &str,
    team: &str,
    due: i64,
) -> Conversation {
    let mut c = conversation(&CustomerId::parse(customer).unwrap());
    c.state = ConversationState::WaitingForHuman;
    c.handoff_at = Some(c.created_at);
    c.ticket = Some(ticket(team, due));
    let turn = Turn {
        is_new: true,
        messages: vec![message(Author::Shopper, "a person please")],
        events: vec![NewEvent::internal(
            EventKind::QueueChanged,
            serde_json::json!({"entered": true}),
        )],
        ..Turn::update(c.clone())
    };
    store.record_turn(&turn).await.unwrap();
    c
}

/// The turn of `agent` taking `c` (as the desk builds it).
fn claim_turn(c: &Conversation, agent: &Agent) -> Turn {
    let mut next = c.clone();
    next.state = ConversationState::WithHuman;
    next.agent_id = Some(agent.id.clone());
    next.assigned_at = Some(Utc::now().trunc_subsecs(6));
    Turn {
        events: vec![NewEvent::internal(
            EventKind::Assigned,
            serde_json::json!({"agent": agent.id.as_str()}),
        )],
        capacity_guard: Some((agent.id.clone(), agent.capacity)),
        ..Turn::update(next)
    }
}

async fn orders_upsert_and_lookup(store: Arc<dyn Store>) {
    let orders = switchboard::import::orders(&root().join("demo/orders.json")).unwrap();
    assert!(orders.len() >= 3);
    assert_eq!(store.upsert_orders(&orders).await.unwrap(), orders.len());
    // Upserting again replaces, never duplicates.
    store.upsert_orders(&orders).await.unwrap();
    let first = &orders[0];
    assert_eq!(
        store.order(&first.order_id).await.unwrap().as_ref(),
        Some(first)
    );
    let mine = store.orders_of(&first.customer_id, 100).await.unwrap();
    let expected = orders
        .iter()
        .filter(|o| o.customer_id == first.customer_id)
        .count();
    assert_eq!(mine.len(), expected);
    assert!(
        mine.windows(2)
            .all(|w| w[0].order_id.as_str() >= w[1].order_id.as_str()),
        "newest first"
    );
    assert_eq!(
        store.orders_of(&first.customer_id, 1).await.unwrap().len(),
        1
    );
    assert!(
        store
            .order(&switchboard::domain::OrderId::parse("19990101-0001").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

async fn agents_lifecycle(store: Arc<dyn Store>) {
    let mut a = agent("ana", 3);
    store.create_agent(&a, "hash-ana").await.unwrap();
    assert!(matches!(
        store.create_agent(&a, "hash-other").await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.agent(&a.id).await.unwrap().unwrap(), a);
    assert_eq!(
        store
            .agent_by_token_hash("hash-ana")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(store.agent_by_token_hash("nope").await.unwrap().is_none());
    a.status = AgentStatus::Away;
    a.teams.push("quality".into());
    a.capacity = 5;
    assert!(store.update_agent(&a).await.unwrap());
    let seen = Utc::now().trunc_subsecs(6);
    store.touch_agent(&a.id, seen).await.unwrap();
    let stored = store.agent(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Away);
    assert_eq!(stored.teams, a.teams);
    assert_eq!(stored.last_seen_at, Some(seen));
    // Availability alone: the rest of the row stays as stored.
    assert!(
        store
            .set_agent_status(&a.id, AgentStatus::Online)
            .await
            .unwrap()
    );
    let stored = store.agent(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Online);
    assert_eq!((stored.capacity, &stored.teams), (5, &a.teams));
    assert!(
        !store
            .set_agent_status(&AgentId::parse("nobody").unwrap(), AgentStatus::Away)
            .await
            .unwrap()
    );
    store
        .create_agent(&agent("bo", 1), "hash-bo")
        .await
        .unwrap();
    let ids: Vec<String> = store
        .agents()
        .await
        .unwrap()
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(ids, ["ana", "bo"]);
    assert!(store.delete_agent(&a.id).await.unwrap());
    assert!(!store.delete_agent(&a.id).await.unwrap());
    assert!(!store.update_agent(&a).await.unwrap());
}

/// Ten writers compute a change from the same version at once: exactly one commits.
async fn concurrent_updates_conflict(store: Arc<dyn Store>) {
    let c = waiting_conversation(store.as_ref(), "c-1", "general", 10).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let turn = Turn {
                messages: vec![message(Author::Shopper, &format!("writer {i}"))],
                ..Turn::update(c)
            };
            store.record_turn(&turn).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.messages(c.id).await.unwrap().len(), 2);
    assert_eq!(store.conversation(c.id).await.unwrap().unwrap().version, 1);
}

/// The same retry key from many requests at once: one stores, the others are told.
async fn concurrent_retry_keys_store_once(store: Arc<dyn Store>) {
    let customer = CustomerId::parse("c-2").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let customer = customer.clone();
        tasks.push(tokio::spawn(async move {
            let c = conversation(&customer);
            let turn = Turn {
                is_new: true,
                messages: vec![message(Author::Shopper, "hi")],
                idempotency: Some(IdempotencyRecord {
                    scope: format!("customer:{customer}"),
                    client_message_id: "same".into(),
                    request_hash: "h".into(),
                    conversation_id: c.id,
                    response: serde_json::json!({"conversation_id": c.id.to_string()}),
                }),
                ..Turn::update(c)
            };
            store.record_turn(&turn).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::DuplicateKey) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
    let since = Utc::now() - Duration::hours(1);
    assert_eq!(
        store.conversations_since(&customer, since).await.unwrap(),
        1,
        "the losers wrote nothing"
    );
}

/// Many agents claim at once: each conversation goes to one agent, nobody over capacity.
async fn claims_respect_capacity_and_exclusivity(store: Arc<dyn Store>) {
    let mut convs = Vec::new();
    for i in 0..12 {
        convs.push(waiting_conversation(store.as_ref(), &format!("c-{i}"), "general", 5 + i).await);
    }
    let agents: Vec<Agent> = (0..4).map(|i| agent(&format!("a{i}"), 2)).collect();
    for a in &agents {
        store.create_agent(a, &format!("h-{}", a.id)).await.unwrap();
    }
    // Every agent tries every conversation, all at once.
    let mut tasks = Vec::new();
    for a in &agents {
        for c in &convs {
            let store = store.clone();
            let turn = claim_turn(c, a);
            let id = a.id.clone();
            tasks.push(tokio::spawn(async move {
                (id, turn.conversation.id, store.record_turn(&turn).await)
            }));
        }
    }
    let mut won = HashSet::new();
    let mut per_agent = std::collections::HashMap::<AgentId, u32>::new();
    for t in tasks {
        let (agent, conv, r) = t.await.unwrap();
        match r {
            Ok(_) => {
                assert!(won.insert(conv), "{conv} claimed twice");
                *per_agent.entry(agent).or_default() += 1;
            }
            Err(StoreError::Conflict | StoreError::OverCapacity) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 8, "4 agents × capacity 2");
    assert!(per_agent.values().all(|&n| n == 2), "{per_agent:?}");
    for a in &agents {
        assert_eq!(store.held_by(&a.id).await.unwrap().len(), 2);
    }
    let waiting = store.waiting(100).await.unwrap();
    assert_eq!(waiting.len(), 4);
    assert!(waiting.windows(2).all(|w| w[0].ticket.as_ref().unwrap().sla_due <= w[1].ticket.as_ref().unwrap().sla_due), "earliest deadline first");
    assert_eq!(store.waiting(2).await.unwrap().len(), 2);
    // Nobody answered yet: all eight are unanswered since a moment from now.
    let later = Utc::now() + Duration::seconds(5);
    assert_eq!(store.unanswered_since(later).await.unwrap().len(), 8);
    assert!(
        store
            .unanswered_since(Utc::now() - Duration::hours(1))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn ratings_once_and_handle_times(store: Arc<dyn Store>) {
    let a = agent("rater", 2);
    store.create_agent(&a, "h-rater").await.unwrap();
    let c = waiting_conversation(store.as_ref(), "c-5", "general", 5).await;
    let claim = claim_turn(&c, &a);
    store.record_turn(&claim).await.unwrap();
    let mut held = store.conversation(c.id).await.unwrap().unwrap();
    let event = || NewEvent::public(EventKind::CsatReceived, serde_json::json!({"score": 5}));
    // Not resolved yet: no rating.
    assert!(!store.set_csat(c.id, 5, None, event()).await.unwrap());
    held.state = ConversationState::Resolved;
    held.resolution = Some("solved".into());
    held.updated_at = Utc::now().trunc_subsecs(6);
    store.record_turn(&Turn::update(held)).await.unwrap();
    assert!(
        store
            .set_csat(c.id, 5, Some("great"), event())
            .await
            .unwrap()
    );
    assert!(
        !store.set_csat(c.id, 1, None, event()).await.unwrap(),
        "rated once"
    );
    let stored = store.conversation(c.id).await.unwrap().unwrap();
    assert_eq!(stored.csat_score, Some(5));
    assert_eq!(stored.version, 3);
    assert_eq!(store.recent_handle_seconds(10).await.unwrap().len(), 1);
    let events = store
        .events_after(&EventFilter::Shopper(c.id), 0, 100)
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().kind, EventKind::CsatReceived);
}

/// Readers see what they may: the shopper never sees private notes or internal events, an
/// agent sees their team's queue and the conversations they hold.
async fn event_filters(store: Arc<dyn Store>) {
    let ana = agent("ana", 3);
    store.create_agent(&ana, "h-ana").await.unwrap();
    let general = waiting_conversation(store.as_ref(), "c-1", "general", 5).await;
    let other = waiting_conversation(store.as_ref(), "c-2", "billing", 5).await;
    let claim = claim_turn(&general, &ana);
    store.record_turn(&claim).await.unwrap();
    let mut held = store.conversation(general.id).await.unwrap().unwrap();
    let mut note = message(Author::Agent, "internal note");
    note.private = true;
    note.agent_id = Some(ana.id.clone());
    let mut reply = message(Author::Agent, "hello from ana");
    reply.agent_id = Some(ana.id.clone());
    held.first_response_at = Some(reply.at);
    let turn = Turn {
        messages: vec![note, reply],
        ..Turn::update(held)
    };
    store.record_turn(&turn).await.unwrap();

    let shopper = store
        .events_after(&EventFilter::Shopper(general.id), 0, 100)
        .await
        .unwrap();
    assert!(
        shopper
            .iter()
            .all(|e| e.shopper_visible && e.conversation_id == general.id)
    );
    let texts: Vec<&str> = shopper
        .iter()
        .filter_map(|e| e.data["message"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["a person please", "hello from ana"]);
    let named = shopper
        .iter()
        .find(|e| e.data["message"]["text"] == "hello from ana")
        .unwrap();
    assert_eq!(named.data["message"]["agent"]["name"], "Agent ana");

    let filter = EventFilter::Agent {
        id: ana.id.clone(),
        teams: vec!["general".into()],
    };
    let mine = store.events_after(&filter, 0, 100).await.unwrap();
    assert!(
        mine.iter()
            .any(|e| e.data["message"]["text"] == "internal note"),
        "the holder sees notes"
    );
    assert!(
        mine.iter().all(|e| e.conversation_id == general.id),
        "not the billing queue"
    );
    let billing = EventFilter::Agent {
        id: AgentId::parse("bo").unwrap(),
        teams: vec!["billing".into()],
    };
    let theirs = store.events_after(&billing, 0, 100).await.unwrap();
    assert!(
        theirs
            .iter()
            .any(|e| e.conversation_id == other.id && e.kind == EventKind::QueueChanged)
    );
    assert!(theirs.iter().all(|e| e.conversation_id == other.id));

    let all = store
        .events_after(&EventFilter::All, 0, 1000)
        .await
        .unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.last_seq().await.unwrap(), all.last().unwrap().seq);
    let page = store
        .events_after(&EventFilter::All, all[1].seq, 2)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [all[2].seq, all[3].seq]
    );
}

/// Writers commit concurrently while a reader follows the log by sequence: the reader, which
/// only ever asks for what comes after the last sequence it saw, ends up with every event
/// exactly once. (A backend whose sequences became visible out of order would lose some.)
async fn followers_miss_no_concurrent_event(store: Arc<dyn Store>) {
    let writers = 16;
    let turns_each = 10;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = conversation(&CustomerId::parse(&format!("w-{w}")).unwrap());
            let mut first = true;
            for i in 0..turns_each {
                let turn = Turn {
                    is_new: first,
                    messages: vec![message(Author::Shopper, &format!("w{w} m{i}"))],
                    ..Turn::update(c.clone())
                };
                store.record_turn(&turn).await.unwrap();
                if !first {
                    c.version += 1;
                }
                first = false;
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst) == writers;
        let page = store
            .events_after(&EventFilter::All, after, 1000)
            .await
            .unwrap();
        if let Some(last) = page.last() {
            after = last.seq;
        }
        seen.extend(page.into_iter().map(|e| e.seq));
        if finished {
            let rest = store
                .events_after(&EventFilter::All, after, 10_000)
                .await
                .unwrap();
            seen.extend(rest.into_iter().map(|e| e.seq));
            break;
        }
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store
        .events_after(&EventFilter::All, 0, 10_000)
        .await
        .unwrap();
    assert_eq!(all.len(), writers * turns_each);
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert_eq!(
        seen.len(),
        all.len(),
        "the follower missed events committed out of order"
    );
}

/// `len` bytes that begin like a PNG, the rest varying, so that a truncation or a mix-up of
/// two photos shows.
fn photo_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend((0..len.saturating_sub(b.len())).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    b
}

/// Attachments: bytes and metadata round-trip (a photo of several MB too), a message names
/// its attachment and its `message_added` event carries it, a named attachment cannot be
/// deleted and an unnamed one can, entirely.
async fn attachments_round_trip_and_belong_to_messages(store: Arc<dyn Store>) {
    let conv = waiting_conversation(store.as_ref(), "c-9", "general", 30).await;
    let big = photo_bytes(4 * 1024 * 1024 + 7, 1);
    let meta = Attachment {
        created_at: Utc::now().trunc_subsecs(6),
        ..Attachment::describe(conv.id, ImageType::Png, &big, Utc::now())
    };
    store.put_attachment(&meta, &big).await.unwrap();
    assert_eq!(store.attachment(meta.id).await.unwrap().unwrap(), meta);
    assert_eq!(store.attachment_bytes(meta.id).await.unwrap().unwrap(), big);
    // A second photo in the same conversation is its own attachment.
    let small = photo_bytes(300, 2);
    let other = Attachment::describe(conv.id, ImageType::Png, &small, Utc::now());
    store.put_attachment(&other, &small).await.unwrap();
    assert_eq!(
        store.attachment_bytes(other.id).await.unwrap().unwrap(),
        small
    );
    assert!(
        store
            .attachment(AttachmentId::new())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .attachment_bytes(AttachmentId::new())
            .await
            .unwrap()
            .is_none()
    );

    let after = store.last_seq().await.unwrap();
    let mut shopper = message(Author::Shopper, "");
    shopper.intent = None;
    shopper.confidence = None;
    shopper.attachment = Some(meta.reference());
    let turn = Turn {
        messages: vec![shopper, message(Author::Bot, "thanks")],
        ..Turn::update(store.conversation(conv.id).await.unwrap().unwrap())
    };
    store.record_turn(&turn).await.unwrap();
    let msgs = store.messages(conv.id).await.unwrap();
    let with_photo: Vec<_> = msgs
        .iter()
        .filter_map(|m| m.body.attachment.clone())
        .collect();
    assert_eq!(with_photo, [meta.reference()]);
    assert_eq!(msgs.last().unwrap().body.attachment, None);
    let events = store
        .events_after(&EventFilter::Shopper(conv.id), after, 10)
        .await
        .unwrap();
    let photo = &events[0].data["message"]["attachment"];
    assert_eq!(photo["id"], meta.id.to_string(), "{photo}");
    assert_eq!(photo["content_type"], "image/png");
    assert_eq!(photo["size"], big.len() as u64);
    assert_eq!(photo["url"], format!("/api/v1/attachments/{}", meta.id));
    assert!(events[1].data["message"].get("attachment").is_none());

    // A photo a message shows stays; one no message names goes, bytes and all.
    assert!(!store.delete_attachment(meta.id).await.unwrap());
    assert_eq!(store.attachment_bytes(meta.id).await.unwrap().unwrap(), big);
    assert!(store.delete_attachment(other.id).await.unwrap());
    assert!(store.attachment(other.id).await.unwrap().is_none());
    assert!(store.attachment_bytes(other.id).await.unwrap().is_none());
    assert!(!store.delete_attachment(other.id).await.unwrap());
}

/// An attachment belongs to a stored conversation, and a message can only name a stored
/// attachment: nothing of a turn naming a missing one is written.
async fn attachments_need_their_conversation_and_messages_a_stored_attachment(
    store: Arc<dyn Store>,
) {
    let bytes = photo_bytes(100, 3);
    let orphan = Attachment::describe(ConversationId::new(), ImageType::Png, &bytes, Utc::now());
    assert!(store.put_attachment(&orphan, &bytes).await.is_err());
    assert!(store.attachment(orphan.id).await.unwrap().is_none());

    let conv = waiting_conversation(store.as_ref(), "c-9", "general", 30).await;
    let before = store.messages(conv.id).await.unwrap().len();
    let mut shopper = message(Author::Shopper, "");
    shopper.attachment =
        Some(Attachment::describe(conv.id, ImageType::Png, &bytes, Utc::now()).reference());
    let turn = Turn {
        messages: vec![shopper],
        ..Turn::update(conv.clone())
    };
    assert!(store.record_turn(&turn).await.is_err());
    assert_eq!(store.messages(conv.id).await.unwrap().len(), before);
    assert_eq!(
        store.conversation(conv.id).await.unwrap().unwrap().version,
        0
    );
}

/// The admin view's SLA figures: conversations first answered since a moment, earliest first,
/// with the ticket saying whether the answer was late; unanswered ones are not counted.
async fn answered_since_lists_first_answers(store: Arc<dyn Store>) {
    let a = agent("quick", 5);
    store.create_agent(&a, "h-quick").await.unwrap();
    let start = Utc::now().trunc_subsecs(6);
    let mut answered = Vec::new();
    for (i, late) in [(0, false), (1, true)] {
        let c = waiting_conversation(store.as_ref(), &format!("c-{i}"), "general", 5).await;
        store.record_turn(&claim_turn(&c, &a)).await.unwrap();
        let mut held = store.conversation(c.id).await.unwrap().unwrap();
        let at = start + Duration::milliseconds(10 * (i + 1));
        held.first_response_at = Some(at);
        if late {
            held.ticket.as_mut().unwrap().breached_at = Some(at);
        }
        store.record_turn(&Turn::update(held)).await.unwrap();
        answered.push(c.id);
    }
    // Claimed but never answered: not in the figures.
    let silent = waiting_conversation(store.as_ref(), "c-9", "general", 5).await;
    store.record_turn(&claim_turn(&silent, &a)).await.unwrap();

    let got = store.answered_since(start).await.unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), answered);
    let late: Vec<bool> = got
        .iter()
        .map(|c| c.ticket.as_ref().unwrap().breached_at.is_some())
        .collect();
    assert_eq!(late, [false, true]);
    let later = start + Duration::milliseconds(15);
    assert_eq!(store.answered_since(later).await.unwrap().len(), 1);
    assert!(
        store
            .answered_since(start + Duration::minutes(1))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::open(None, dir.path()).await.unwrap();
    (backend.store(), dir)
}

async fn postgres() -> (Arc<dyn Store>, PgDatabase) {
    let db = PgDatabase::create().await;
    let backend = Backend::open(Some(&db.url), std::path::Path::new("unused"))
        .await
        .unwrap();
    (backend.store(), db)
}

/// A place in line counted by the database is the policy's: for every waiting conversation,
/// `ahead_in_line` equals `routing::queue::ahead_of` over the stored queue — with ties on the
/// deadline, the priority and the waiting time, two teams, two languages, and conversations
/// that left the queue.
async fn ahead_in_line_counts_in_the_policy_order(store: Arc<dyn Store>) {
    use switchboard::routing::queue::{self, QueueEntry};
    let base = Utc::now().trunc_subsecs(0);
    let mut waiting = Vec::new();
    for i in 0..40i64 {
        let mut c = conversation(&CustomerId::parse(&format!("c-{i}")).unwrap());
        let mut t = ticket(if i % 3 == 0 { "quality" } else { "general" }, 0);
        // Few distinct values, so that every tie-break is exercised.
        t.sla_due = base + Duration::seconds(60 * ((i * 7) % 5));
        t.priority = ((i * 5) % 3) as i32;
        t.lang = if i % 4 == 0 { Lang::Zh } else { Lang::En };
        c.state = ConversationState::WaitingForHuman;
        c.handoff_at = Some(base - Duration::seconds((i * 11) % 4));
        c.ticket = Some(t);
        // Some have left the queue: with an agent, or back with the bot.
        if i % 7 == 3 {
            c.state = ConversationState::WithHuman;
        } else if i % 7 == 5 {
            c.state = ConversationState::Bot;
        }
        let turn = Turn {
            is_new: true,
            messages: vec![message(Author::Shopper, "a person please")],
            ..Turn::update(c.clone())
        };
        store.record_turn(&turn).await.unwrap();
        if c.state == ConversationState::WaitingForHuman {
            waiting.push(c);
        }
    }
    let entry = |c: &Conversation| {
        let t = c.ticket.as_ref().unwrap();
        QueueEntry {
            conversation_id: c.id,
            waiting_since: c.handoff_at.unwrap(),
            sla_due: t.sla_due,
            priority: t.priority,
            team: t.team.clone(),
            lang: t.lang,
        }
    };
    let entries: Vec<QueueEntry> = waiting.iter().map(entry).collect();
    let mut positions = HashSet::new();
    for c in &waiting {
        let me = entry(c);
        let others: Vec<&QueueEntry> = entries
            .iter()
            .filter(|e| e.conversation_id != c.id)
            .collect();
        let expected = queue::ahead_of(others, &me);
        assert_eq!(store.ahead_in_line(c).await.unwrap(), expected, "{me:?}");
        positions.insert((me.team.clone(), me.lang, expected));
    }
    // Every line has a first and later places: the test compares real orders, not zeros.
    assert!(
        positions.iter().filter(|p| p.2 == 0).count() >= 4,
        "{positions:?}"
    );
    assert!(positions.iter().any(|p| p.2 >= 5), "{positions:?}");
}

/// One test per contract function and backend, each on a fresh database.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = super::sqlite().await;
                    store.ping().await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _db) = super::postgres().await;
                    store.ping().await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
    };
}

contract!(
    turns_are_atomic_and_idempotent,
    customers_upsert,
    orders_upsert_and_lookup,
    agents_lifecycle,
    concurrent_updates_conflict,
    concurrent_retry_keys_store_once,
    claims_respect_capacity_and_exclusivity,
    ratings_once_and_handle_times,
    event_filters,
    followers_miss_no_concurrent_event,
    channel_inbound_is_stored_once_when_deliveries_race,
    channel_outbox_rows_commit_with_their_turn_in_order,
    attachments_round_trip_and_belong_to_messages,
    attachments_need_their_conversation_and_messages_a_stored_attachment,
    answered_since_lists_first_answers,
    ahead_in_line_counts_in_the_policy_order,
);

/// The embedded store keeps a photo's bytes as one file in `DATA_DIR/attachments`, named by
/// the attachment's id and holding exactly the bytes; a file changed behind its back is
/// reported as corrupt rather than served.
#[tokio::test]
async fn sqlite_keeps_photos_as_files_in_the_data_directory() {
    let (store, dir) = sqlite().await;
    let conv = waiting_conversation(store.as_ref(), "c-9", "general", 30).await;
    let bytes = photo_bytes(5000, 4);
    let meta = Attachment::describe(conv.id, ImageType::Png, &bytes, Utc::now());
    store.put_attachment(&meta, &bytes).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path().join("attachments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files,
        [dir.path().join("attachments").join(meta.id.to_string())]
    );
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);

    std::fs::write(&files[0], photo_bytes(5000, 5)).unwrap();
    assert!(matches!(
        store.attachment_bytes(meta.id).await,
        Err(StoreError::Corrupt(_))
    ));
    // Reopened, the store finds its files again.
    std::fs::write(&files[0], &bytes).unwrap();
    drop(store);
    let store = Backend::open(None, dir.path()).await.unwrap().store();
    assert_eq!(
        store.attachment_bytes(meta.id).await.unwrap().unwrap(),
        bytes
    );
}

/// Reopening runs migrations idempotently and keeps the data, on both backends.
#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create().await;
    for url in [None, Some(db.url.as_str())] {
        let store = Backend::open(url, dir.path()).await.unwrap().store();
        customers_upsert(store.clone()).await;
        drop(store);
        let store = Backend::open(url, dir.path()).await.unwrap().store();
        assert_eq!(store.customer_count().await.unwrap(), 1);
    }
}

/// PostgreSQL announces every commit: a listener on one connection pool (another instance)
/// hears the sequence a commit on another pool wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commits_wake_listeners_on_other_instances() {
    let db = PgDatabase::create().await;
    let here = Backend::open(Some(&db.url), std::path::Path::new("unused"))
        .await
        .unwrap();
    let there = Backend::open(Some(&db.url), std::path::Path::new("unused"))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = there
        .listen(Arc::new(move |seq| {
            let _ = tx.send(seq);
        }))
        .expect("PostgreSQL listens");
    // LISTEN is in place once the listener's connection is up; commits before that are found
    // by polling, so keep committing until one is heard.
    let store = here.store();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let c = waiting_conversation(store.as_ref(), "c-9", "general", 5).await;
            let _ = c;
            if let Ok(Some(seq)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv()).await
            {
                return seq;
            }
        }
    })
    .await
    .expect("a commit was announced");
    assert!(heard > 0);
    assert!(heard <= store.last_seq().await.unwrap());
    listener.abort();
}

// --- Messaging channels (issue #10): inbox, contacts, outbox. ---

mod channel_cases {
    use super::*;

    pub fn record(user: &str, id: &str, order: i64) -> InboundRecord {
        InboundRecord {
            channel: "telegram".into(),
            platform_message_id: id.into(),
            user_id: user.into(),
            address: format!("chat-{user}"),
            new_customer_id: CustomerId::parse(&format!("tg:{user}")).unwrap(),
            new_conversation_id: ConversationId::new(),
            kind: "text".into(),
            text: format!("message {id}"),
            lang: None,
            media_id: None,
            sent_at: Utc::now().trunc_subsecs(0),
            platform_order: order,
        }
    }

    pub async fn conversation_of(store: &dyn Store, user: &str) -> ConversationId {
        store
            .store_inbound(&[record(user, &format!("seed-{user}"), 0)])
            .await
            .unwrap();
        let ids = store.inbox_conversations(i64::MAX, 0, 100).await.unwrap();
        let items = futures::future::join_all(ids.iter().map(|id| store.pending_inbox(*id))).await;
        ids.into_iter()
            .zip(items)
            .find(|(_, items)| {
                items
                    .as_ref()
                    .unwrap()
                    .iter()
                    .any(|i| i.customer_id == format!("tg:{user}"))
            })
            .map(|(id, _)| id)
            .unwrap()
    }
}

async fn channel_inbound_is_stored_once_when_deliveries_race(store: Arc<dyn Store>) {
    use channel_cases::record;
    // Five deliveries of one message at once (as from five instances): one stores it.
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let store = store.clone();
            let mut r = record("u1", "m-1", 10);
            r.new_conversation_id = ConversationId::new();
            r.text = format!("delivery {i}");
            tokio::spawn(async move { store.store_inbound(&[r]).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        fresh += t.await.unwrap().iter().filter(|f| **f).count();
    }
    assert_eq!(fresh, 1);
    let ids = store.inbox_conversations(i64::MAX, 0, 10).await.unwrap();
    assert_eq!(ids.len(), 1, "one contact, one conversation");
    // Later messages of the user join the same conversation, in the platform's order.
    let got = store
        .store_inbound(&[
            record("u1", "m-3", 30),
            record("u1", "m-2", 20),
            record("u1", "m-1", 10),
        ])
        .await
        .unwrap();
    assert_eq!(got, vec![true, true, false]);
    assert_eq!(
        store.inbox_conversations(i64::MAX, 0, 10).await.unwrap(),
        ids
    );
    let pending = store.pending_inbox(ids[0]).await.unwrap();
    let order: Vec<&str> = pending
        .iter()
        .map(|i| i.platform_message_id.as_str())
        .collect();
    assert_eq!(order, vec!["m-1", "m-2", "m-3"]);
    assert_eq!(pending[0].customer_id, "tg:u1");
    // Not settled yet: nothing to process before its receipt time.
    assert!(
        store
            .inbox_conversations(0, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // One worker at a time per conversation.
    let now = 1_000;
    assert!(
        store
            .lease_inbox(ids[0], "a", now, now + 500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_inbox(ids[0], "b", now + 1, now + 500)
            .await
            .unwrap()
    );
    assert!(
        store
            .inbox_conversations(i64::MAX, now + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .lease_inbox(ids[0], "a", now + 2, now + 600)
            .await
            .unwrap(),
        "renewal"
    );
    store.release_inbox(ids[0], "b").await.unwrap();
    assert!(
        !store
            .lease_inbox(ids[0], "b", now + 3, now + 500)
            .await
            .unwrap()
    );
    store.release_inbox(ids[0], "a").await.unwrap();
    assert!(
        store
            .lease_inbox(ids[0], "b", now + 4, now + 500)
            .await
            .unwrap()
    );
    // An expired lease can be taken over.
    assert!(
        store
            .lease_inbox(ids[0], "c", now + 501, now + 900)
            .await
            .unwrap()
    );

    store.finish_inbox(pending[0].id, false).await.unwrap();
    store.retry_inbox(pending[1].id).await.unwrap();
    store.finish_inbox(pending[2].id, true).await.unwrap();
    let left = store.pending_inbox(ids[0]).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].platform_message_id, "m-2");
    assert_eq!(left[0].attempts, 1);
}

async fn channel_outbox_rows_commit_with_their_turn_in_order(store: Arc<dyn Store>) {
    let id = channel_cases::conversation_of(store.as_ref(), "u2").await;
    let customer = CustomerId::parse("tg:u2").unwrap();
    let mut conv = conversation(&customer);
    conv.id = id;
    conv.channel = "telegram".into();
    let mut note = message(Author::System, "handed off");
    note.private = true;
    let turn = Turn {
        conversation: conv.clone(),
        is_new: true,
        expected_version: 0,
        messages: vec![
            message(Author::Shopper, "hi"),
            message(Author::Bot, "first"),
            message(Author::Bot, "second"),
            note,
        ],
        events: vec![],
        idempotency: None,
        capacity_guard: None,
    };
    let committed = store.record_turn(&turn).await.unwrap();
    // A conversation without a channel contact (widget, API) gets no outbox rows.
    let other = conversation(&CustomerId::parse("c-77").unwrap());
    store
        .record_turn(&Turn {
            conversation: other,
            is_new: true,
            expected_version: 0,
            messages: vec![message(Author::Bot, "widget reply")],
            events: vec![],
            idempotency: None,
            capacity_guard: None,
        })
        .await
        .unwrap();
    let rows = store.outbox(None, 100).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut rows = rows;
    rows.sort_by_key(|r| r.id);
    assert_eq!(rows[0].text, "first");
    assert_eq!(rows[0].address, "chat-u2");
    assert_eq!(rows[0].channel, "telegram");
    assert_eq!(rows[0].message_id, committed.message_ids[1]);
    assert_eq!(rows[1].message_id, committed.message_ids[2]);
    // A failed turn writes no outbox row either.
    let stale = Turn {
        conversation: conv.clone(),
        is_new: false,
        expected_version: 7,
        messages: vec![message(Author::Bot, "never")],
        events: vec![],
        idempotency: None,
        capacity_guard: None,
    };
    assert!(matches!(
        store.record_turn(&stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.outbox(None, 100).await.unwrap().len(), 2);

    // Only the conversation's oldest pending row is due; leases are exclusive.
    let now = Utc::now().timestamp_millis() + 10;
    let due = store.due_outbox(now, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![rows[0].id]
    );
    let racers: Vec<_> = (0..5)
        .map(|i| {
            let store = store.clone();
            let id = rows[0].id;
            tokio::spawn(async move {
                store
                    .lease_outbox(id, &format!("w{i}"), now, now + 1000)
                    .await
                    .unwrap()
                    .then_some(format!("w{i}"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for r in racers {
        winners.extend(r.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "one sender per row");
    let owner = winners[0].clone();
    assert!(
        store.due_outbox(now, 10).await.unwrap().is_empty(),
        "leased head blocks the rest"
    );
    let failed = Attempt::Failed {
        error: "HTTP 500".into(),
        retry_at_ms: Some(now + 5000),
    };
    assert!(
        !store
            .record_attempt(rows[0].id, "someone-else", &failed, Utc::now())
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt(rows[0].id, &owner, &failed, Utc::now())
            .await
            .unwrap()
    );
    assert!(
        store.due_outbox(now, 10).await.unwrap().is_empty(),
        "backing off, still the head"
    );
    let later = now + 5000;
    assert_eq!(store.due_outbox(later, 10).await.unwrap()[0].id, rows[0].id);
    assert!(
        store
            .lease_outbox(rows[0].id, "w", later, later + 1000)
            .await
            .unwrap()
    );
    let sent = Attempt::Delivered {
        platform_message_id: Some("p-1".into()),
    };
    assert!(
        store
            .record_attempt(rows[0].id, "w", &sent, Utc::now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_attempt(rows[0].id, "w", &sent, Utc::now())
            .await
            .unwrap(),
        "sent once"
    );
    let first = store.outbox_item(rows[0].id).await.unwrap().unwrap();
    assert_eq!(first.state, "sent");
    assert_eq!(first.attempts, 2);
    assert_eq!(first.delivery_status.as_deref(), Some("sent"));
    assert_eq!(store.due_outbox(later, 10).await.unwrap()[0].id, rows[1].id);

    // Parked as dead, then revived by an admin.
    assert!(
        store
            .lease_outbox(rows[1].id, "w", later, later + 1000)
            .await
            .unwrap()
    );
    let dead = Attempt::Failed {
        error: "HTTP 400".into(),
        retry_at_ms: None,
    };
    assert!(
        store
            .record_attempt(rows[1].id, "w", &dead, Utc::now())
            .await
            .unwrap()
    );
    assert!(store.due_outbox(later, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .outbox(Some(OutboxState::Dead), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        !store.revive_outbox(rows[0].id, later).await.unwrap(),
        "only dead rows"
    );
    assert!(store.revive_outbox(rows[1].id, later).await.unwrap());
    let revived = store.outbox_item(rows[1].id).await.unwrap().unwrap();
    assert_eq!((revived.state.as_str(), revived.attempts), ("pending", 0));

    // Delivery statuses only move forward.
    for (status, expect) in [
        ("delivered", "delivered"),
        ("read", "read"),
        ("delivered", "read"),
    ] {
        assert!(
            store
                .update_delivery("telegram", "p-1", status, None)
                .await
                .unwrap()
        );
        let row = store.outbox_item(rows[0].id).await.unwrap().unwrap();
        assert_eq!(row.delivery_status.as_deref(), Some(expect));
    }
    assert!(
        !store
            .update_delivery("telegram", "p-unknown", "read", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_delivery("whatsapp", "p-1", "read", None)
            .await
            .unwrap()
    );
    let d = store.deliveries(id).await.unwrap();
    assert_eq!(
        d,
        vec![
            (
                committed.message_ids[1],
                "sent".to_string(),
                Some("read".to_string())
            ),
            (committed.message_ids[2], "pending".to_string(), None),
        ]
    );
    // A failure report keeps the platform's reason for admins.
    assert!(
        store
            .update_delivery(
                "telegram",
                "p-1",
                "failed",
                Some("WhatsApp 131047 Re-engagement")
            )
            .await
            .unwrap()
    );
    let row = store.outbox_item(rows[0].id).await.unwrap().unwrap();
    assert_eq!(row.delivery_status.as_deref(), Some("failed"));
    assert_eq!(
        row.last_error.as_deref(),
        Some("WhatsApp 131047 Re-engagement")
    );
}
