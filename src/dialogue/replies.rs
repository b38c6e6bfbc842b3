//! The bot's fixed sentences, in English and Chinese.

use crate::domain::Lang;

/// A fixed reply the bot can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    Greeting,
    Thanks,
    Goodbye,
    Capabilities,
    AskOrderNumber,
    OrderNotFound,
    Clarify,
    FaqNoAnswer,
    HandoffNotice,
    HandoffUpset,
    LookupDown,
    StillWaiting,
    AskContactFactor,
    ContactMismatch,
    /// A message the bot cannot read (image, sticker, location, voice note).
    Unsupported,
    PhotoReceived,
}

/// The sentence for `c` in `lang`.
pub fn canned(c: Canned, lang: Lang) -> &'static str {
    use Canned::*;
    match (c, lang) {
        (Unsupported, Lang::En) => {
            "Thanks! I can only read text messages, so I can't open this one, but it is kept in this conversation for our support team. Could you tell me in words what you need?"
        }
        (Unsupported, Lang::Zh) => {
            "收到！我目前只能读取文字消息，暂时无法查看这条内容，但它已保存在对话记录中，客服可以看到。能否用文字描述一下您需要什么帮助？"
        }
        (Greeting, Lang::En) => {
            "Hi! I'm the Lumen & Co. assistant. I can track your order, explain returns, refunds, shipping and warranty, or get you a person. What can I do for you?"
        }
        (Greeting, Lang::Zh) => {
            "您好！我是 Lumen & Co. 智能客服，可以帮您查询订单物流、解答退换货、退款、配送和保修问题，也可以为您转接人工。请问有什么可以帮您？"
        }
        (Thanks, Lang::En) => "You're welcome! Anything else I can help with?",
        (Thanks, Lang::Zh) => "不客气！还有其他可以帮您的吗？",
        (Goodbye, Lang::En) => "Thanks for chatting with us. Have a great day!",
        (Goodbye, Lang::Zh) => "感谢您的咨询，祝您生活愉快，再见！",
        (Capabilities, Lang::En) => {
            "I'm an automated assistant. I can: track an order (just send the order number), answer questions about returns, refunds, exchanges, shipping, warranty, invoices, payment and coupons, and hand you to a human agent for anything else."
        }
        (Capabilities, Lang::Zh) => {
            "我是智能客服机器人，可以：查询订单物流（发我订单号即可），解答退货、退款、换货、配送、保修、发票、支付和优惠券等问题；其他问题我会为您转接人工客服。"
        }
        (AskOrderNumber, Lang::En) => {
            "Sure, I can check that. What's your order number? It looks like 20231104-8812 and is in your confirmation email."
        }
        (AskOrderNumber, Lang::Zh) => {
            "好的，我来帮您查询。请提供您的订单号（格式如 20231104-8812，可在下单确认邮件或“我的订单”中找到）。"
        }
        (OrderNotFound, Lang::En) => {
            "I couldn't find an order with that number on your account. Could you double-check it? It looks like 20231104-8812."
        }
        (OrderNotFound, Lang::Zh) => {
            "在您的账户下没有找到这个订单号，麻烦您再核对一下（格式如 20231104-8812）。"
        }
        (Clarify, Lang::En) => {
            "Sorry, I didn't quite get that. Could you rephrase? I can help with order tracking, returns, refunds, shipping, warranty and invoices."
        }
        (Clarify, Lang::Zh) => {
            "抱歉，我没有完全理解您的意思，能换个说法吗？我可以帮您查物流、退换货、退款、配送、保修和发票等问题。"
        }
        (FaqNoAnswer, Lang::En) => {
            "I'm not sure I have the right article for that. Could you tell me a bit more about what you need?"
        }
        (FaqNoAnswer, Lang::Zh) => "这个问题我暂时没有找到合适的答案，能再具体描述一下您的需求吗？",
        (HandoffNotice, Lang::En) => {
            "I'm passing you to a member of our support team; a person will take over this chat shortly. Everything you've written so far is shared with them, so you won't need to repeat yourself."
        }
        (HandoffNotice, Lang::Zh) => {
            "正在为您转接人工客服，稍后会有专人接手本次对话。您之前的聊天记录会同步给客服，无需重复描述。"
        }
        (HandoffUpset, Lang::En) => {
            "I'm sorry about this experience. I'm bringing in a member of our support team right away; a person will take over this chat shortly."
        }
        (HandoffUpset, Lang::Zh) => {
            "非常抱歉给您带来不好的体验，我马上为您转接人工客服，稍后会有专人接手处理。"
        }
        (LookupDown, Lang::En) => {
            "Sorry, I can't reach our order system right now. I'm passing you to a member of our support team, who will check your order for you shortly."
        }
        (LookupDown, Lang::Zh) => {
            "抱歉，订单系统暂时无法访问。我已为您转接人工客服，稍后会有专人帮您查询订单。"
        }
        (StillWaiting, Lang::En) => {
            "Thanks, I've added that to your conversation. A member of our support team will reply here shortly."
        }
        (StillWaiting, Lang::Zh) => "收到，已补充到您的对话中，人工客服稍后会在这里回复您。",
        (AskContactFactor, Lang::En) => {
            "To keep your order private, please confirm one detail on it: the email address or phone number used for the order, or the delivery postcode."
        }
        (AskContactFactor, Lang::Zh) => {
            "为保护您的订单隐私，请提供该订单上的一项信息进行核验：下单邮箱、手机号，或收货地址的邮编。"
        }
        (ContactMismatch, Lang::En) => {
            "Sorry, I couldn't match those details to that order number. Please check the order number and the email, phone number or postcode on the order."
        }
        (ContactMismatch, Lang::Zh) => {
            "抱歉，您提供的信息与该订单号不匹配。请核对订单号，以及订单上的邮箱、手机号或邮编。"
        }
        (PhotoReceived, Lang::En) => {
            "Thanks, I've got your photo. I can't look at pictures myself, but a member of our support team can: choose “I want to talk to a person” and they will see it, or tell me in a few words what happened."
        }
        (PhotoReceived, Lang::Zh) => {
            "已收到您的照片。我暂时无法查看图片，人工客服可以帮您查看：点击“我要找人工客服”即可转接，客服会看到这张照片；您也可以简单描述一下发生了什么。"
        }
    }
}
