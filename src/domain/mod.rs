//! Domain values shared by every layer: ids, customers, orders, conversations and messages.
//! Parsed at the edge (HTTP, CLI, files) and trusted inside.

pub mod agent;
pub mod attachment;
pub mod conversation;
pub mod customer;
pub mod event;
pub mod ids;
pub mod lang;
pub mod order;
pub mod text;
pub mod ticket;

pub use agent::{Agent, AgentId, AgentStatus};
pub use attachment::{Attachment, AttachmentId, AttachmentRef, ImageType};
pub use conversation::{
    Author, Conversation, ConversationState, IllegalTransition, Message, NewMessage, RouteDecision,
    Slots, Transition,
};
pub use customer::{Customer, Tier};
pub use event::{Event, EventKind, NewEvent};
pub use ids::{ConversationId, CustomerId, IdError, OrderId};
pub use lang::Lang;
pub use order::{Order, OrderEvent, OrderItem, OrderStatus};
pub use ticket::{HandoffTicket, RiskSignal};
