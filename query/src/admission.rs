//! Admission control: at most `max_statements` statements run (or stream
//! their results) at once in the whole server; the next one waits for a
//! slot up to `wait`, then gets `RESOURCE_EXHAUSTED`. This bounds the
//! threads and DuckDB memory a crowd of clients can take, and a client that
//! is refused knows to back off (rather than time out).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{QueryError, QueryResult};

pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
    wait: Duration,
}

impl Admission {
    pub fn new(max_statements: usize, wait: Duration) -> Self {
        let max = max_statements.max(1);
        Admission { slots: Arc::new(Semaphore::new(max)), max, wait }
    }

    /// A slot for one statement; it is free again when the permit drops.
    pub async fn admit(&self) -> QueryResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(QueryError::Internal("the server is shutting down".into())),
            Err(_elapsed) => Err(QueryError::Overloaded(format!(
                "the server is running its limit of {} statements and none finished within {} ms: retry later \
                 (or raise the server's --max-statements)",
                self.max,
                self.wait.as_millis()
            ))),
        }
    }

    /// Statements admitted now.
    pub fn running(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_server_refuses_after_the_wait_and_admits_again_once_a_slot_frees() {
        let admission = Admission::new(2, Duration::from_millis(50));
        let a = admission.admit().await.unwrap();
        let _b = admission.admit().await.unwrap();
        assert_eq!(admission.running(), 2);
        let refused = admission.admit().await.unwrap_err();
        assert!(matches!(refused, QueryError::Overloaded(_)), "{refused}");
        assert_eq!(refused.status().code(), tonic::Code::ResourceExhausted);
        // A waiting statement gets the slot a finishing one frees.
        let waiting = tokio::spawn({
            let slots = admission.slots.clone();
            async move { tokio::time::timeout(Duration::from_secs(5), slots.acquire_owned()).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(a);
        assert!(waiting.await.unwrap());
    }
}
