//! What one request may spend while it runs (issue 18): SQL statements and answer
//! bytes. The cost model (`graphql::cost`) refuses most expensive documents before
//! they run; these bounds catch whatever its estimates let through, counted as the
//! work happens rather than guessed.
//!
//! Statements are counted by the metric callback of the request's own clone of the
//! database handle (`db::counted`), so every statement a resolver, a loader or a
//! transaction runs for the request is seen. Crossing the limit wakes
//! [`Budget::exhausted`], which the transport races against execution: execution is
//! dropped at once, and with it the request's futures, statements in flight and open
//! transactions (rolled back), so the work is not merely hidden but stopped.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;
use tokio::sync::Notify;

use crate::error::Error;

/// One request's statement budget.
pub struct Budget {
    max_statements: usize,
    statements: AtomicUsize,
    exceeded: AtomicBool,
    notify: Notify,
}

impl Budget {
    pub fn new(max_statements: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max_statements,
            statements: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }

    /// Records one statement run for the request.
    pub fn statement(&self) {
        let run = self.statements.fetch_add(1, Ordering::Relaxed) + 1;
        if run > self.max_statements && !self.exceeded.swap(true, Ordering::AcqRel) {
            self.notify.notify_waiters();
        }
    }

    /// Statements run so far.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }

    /// Completes once the request has run more statements than it may.
    pub async fn exhausted(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a crossing in between is not missed.
        notified.as_mut().enable();
        if self.exceeded.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// The error of a request stopped by this budget.
    pub fn error(&self) -> Error {
        Error::OverBudget(format!(
            "the request ran more than {} SQL statements (MAX_REQUEST_STATEMENTS) and was \
             stopped; ask for fewer fields or lists at once",
            self.max_statements
        ))
    }
}

/// Serialises an answer as JSON, refusing it once it grows past `max_bytes`: the
/// serialiser stops at the limit, so an oversized answer never exists in full.
pub fn to_json(value: &impl Serialize, max_bytes: usize) -> Result<Vec<u8>, Error> {
    let mut writer = Capped {
        buffer: Vec::new(),
        max_bytes,
    };
    match serde_json::to_writer(&mut writer, value) {
        Ok(()) => Ok(writer.buffer),
        Err(err) if err.is_io() => Err(Error::OverBudget(format!(
            "the answer is larger than {max_bytes} bytes (MAX_ANSWER_BYTES) and was not \
             sent; ask for fewer rows or fields"
        ))),
        Err(err) => Err(Error::Internal(format!(
            "could not serialise an answer: {err}"
        ))),
    }
}

struct Capped {
    buffer: Vec<u8>,
    max_bytes: usize,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + data.len() > self.max_bytes {
            return Err(io::Error::other("answer over its size limit"));
        }
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn crossing_the_statement_limit_wakes_a_waiter_once() {
        let budget = Budget::new(2);
        budget.statement();
        budget.statement();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.exhausted().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        budget.statement();
        waiter.await.expect("woken");
        // Already crossed: completes at once.
        budget.exhausted().await;
        assert_eq!(budget.statements(), 3);
    }

    #[test]
    fn answers_over_the_limit_are_refused_not_truncated() {
        let value = serde_json::json!({ "data": "x".repeat(100) });
        assert!(to_json(&value, 200).is_ok());
        let err = to_json(&value, 50).unwrap_err();
        assert!(err.to_string().contains("MAX_ANSWER_BYTES"), "{err}");
    }
}
