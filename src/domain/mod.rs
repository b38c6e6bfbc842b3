//! Domain values shared by every layer: ids, customers, orders, conversations and messages.
//! Parsed at the edge (HTTP, CLI, files) and trusted inside.

pub mod conversation;
pub mod customer;
pub mod ids;
pub mod lang;
pub mod order;
pub mod text;

pub use conversation::{
    Author, Conversation, ConversationState, Message, NewMessage, RouteDecision, Slots,
};
pub use customer::{Customer, Tier};
pub use ids::{ConversationId, CustomerId, IdError, OrderId};
pub use lang::Lang;
pub use order::{Order, OrderEvent, OrderItem, OrderStatus};
