//! The storage contract, run against the embedded backend. A new backend (PostgreSQL on the
//! roadmap) must pass the same functions.

use chrono::Utc;
use switchboard::domain::{
    Author, Conversation, ConversationId, ConversationState, Customer, CustomerId, Lang,
    NewMessage, Slots, Tier,
};
use switchboard::store::sqlite::SqliteStore;
#[allow(unused_imports)]
use switchboard::store::{ConversationStore, CustomerStore, EventStore};
use switchboard::store::{IdempotencyRecord, Store, StoreError, Turn};

fn conversation(customer: &CustomerId) -> Conversation {
    let now = Utc::now();
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
        at: Utc::now(),
        channel: "api".into(),
        intent: Some("greeting".into()),
        confidence: Some(0.75),
        out_of_scope: Some(false),
        alternatives: vec![],
        route: None,
        client_message_id: None,
        agent_id: None,
        private: false,
    }
}

async fn turns_are_atomic_and_idempotent(store: &dyn Store) {
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

async fn customers_upsert(store: &dyn Store) {
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

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store.ping().await.unwrap();
    turns_are_atomic_and_idempotent(&store).await;
    customers_upsert(&store).await;
    // Reopening runs migrations idempotently and keeps the data.
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.customer_count().await.unwrap(), 1);
}
