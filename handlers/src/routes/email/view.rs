//! How mail is shown to Dex.

use chrono::{DateTime, Utc};
use providers::google::MailMessage;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct MessageSummary {
    pub id: String,
    pub thread_id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub snippet: String,
    pub unread: bool,
    /// When the mailbox received it.
    pub received_at: Option<DateTime<Utc>>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub thread_id: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    /// The `Date` header as the sender wrote it.
    pub date: String,
    pub received_at: Option<DateTime<Utc>>,
    /// Gmail labels, e.g. INBOX, UNREAD, SENT, TRASH.
    pub labels: Vec<String>,
    pub snippet: String,
    /// The plain-text body.
    pub body: String,
}

fn received_at(m: &MailMessage) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(m.internal_date).filter(|_| m.internal_date > 0)
}

impl From<MailMessage> for MessageSummary {
    fn from(m: MailMessage) -> Self {
        Self {
            received_at: received_at(&m),
            unread: m.label_ids.iter().any(|l| l == "UNREAD"),
            id: m.id,
            thread_id: m.thread_id,
            from: m.from,
            to: m.to,
            subject: m.subject,
            snippet: m.snippet,
        }
    }
}

impl From<MailMessage> for MessageView {
    fn from(m: MailMessage) -> Self {
        Self {
            received_at: received_at(&m),
            id: m.id,
            thread_id: m.thread_id,
            from: m.from,
            to: m.to,
            cc: m.cc,
            subject: m.subject,
            date: m.date,
            labels: m.label_ids,
            snippet: m.snippet,
            body: m.body,
        }
    }
}
