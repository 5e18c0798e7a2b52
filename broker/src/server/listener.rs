//! The accept loop: bounds connections (`max.connections`), spawns one task per connection, and on
//! shutdown stops accepting and waits (up to a grace period) for connections to finish their
//! in-flight requests.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::{serve_connection, ConnectionLimits, RequestHandler};

/// Pause after a failed `accept` (typically EMFILE) so the loop does not spin; connections already
/// open keep being served meanwhile.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Listener settings from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct ListenerSettings {
    /// Limits applied to each connection.
    pub connection: ConnectionLimits,
    /// `max.connections`: connections beyond this are closed at once.
    pub connections_max: usize,
    /// How long shutdown waits for open connections to drain.
    pub shutdown_grace: Duration,
}

/// Accepts connections on `listener` until `shutdown` fires, then drains them (see module doc).
pub async fn serve<H: RequestHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(settings.connections_max));
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!("accept failed: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max_connections = settings.connections_max,
                "refusing connection: max.connections reached"
            );
            drop(stream);
            continue;
        };
        tracing::debug!(%peer, "connection accepted");
        let handler = Arc::clone(&handler);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_connection(stream, peer, &*handler, settings.connection, &shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let open = tracker.len();
    if open > 0 {
        tracing::info!(open, "stopped accepting; waiting for connections to finish");
    }
    if tokio::time::timeout(settings.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            grace_ms = settings.shutdown_grace.as_millis() as u64,
            "connections still open after the shutdown grace period; closing them"
        );
    }
}
