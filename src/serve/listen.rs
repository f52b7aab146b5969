//! The socket: accepting connections with the limits a port open to the
//! internet needs.
//!
//! `axum::serve` has no header-read timeout, no connection cap and no drain
//! deadline: one client that sends half its headers holds its connection —
//! and a shutdown — forever, and enough of them exhaust the process's file
//! descriptors until `/health` stops answering. This accept loop serves the
//! same router with hyper's HTTP/1 server and:
//!
//! - closes a connection whose request head has not fully arrived
//!   [`Limits::header_read_timeout`] after it opened or after its previous
//!   response (hyper's header-read timer, which also bounds idle keep-alive);
//! - serves at most [`Limits::max_connections`] at once: further clients
//!   wait in the kernel's backlog instead of the process running out of
//!   descriptors;
//! - on the first stop signal closes the listening socket (new connections
//!   are refused), lets requests in flight finish and closes idle
//!   connections; it gives up on what is still open after [`Limits::drain`]
//!   or at a second signal, and says how many connections it cut.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// How long and how many: the limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for a request's head, from the connection's start or its
    /// previous response.
    pub header_read_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Longest wait, after the stop signal, for requests in flight.
    pub drain: Duration,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within the drain deadline.
    Drained,
    /// The deadline passed with this many connections still open.
    DeadlinePassed(usize),
    /// A second signal came with this many connections still open.
    Forced(usize),
}

/// Serve `app` on `listener` until `stop` yields, then drain.
///
/// `stop` receives one message per stop signal (SIGTERM, Ctrl-C); a closed
/// channel never stops the service.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: mpsc::UnboundedReceiver<()>,
) -> Stopped {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (closing, closing_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut accept_errors = 0u64;
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = signal(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors or a connection reset before accept:
                    // wait a little rather than spin; the next accept may work.
                    accept_errors += 1;
                    if accept_errors.is_power_of_two() {
                        tracing::warn!(failures = accept_errors, "accepting a connection failed ({accept_errors} times so far): {err}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal(&mut stop) => break,
        };
        tokio::spawn(connection(
            stream,
            app.clone(),
            builder.clone(),
            closing_rx.clone(),
            permit,
        ));
    }
    // Closing the socket makes new clients' connects fail at once.
    drop(listener);
    let _ = closing.send(true);
    let open = |slots: &Semaphore| max - slots.available_permits();
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => Stopped::Drained,
        _ = tokio::time::sleep(limits.drain) => Stopped::DeadlinePassed(open(&slots)),
        _ = signal(&mut stop) => Stopped::Forced(open(&slots)),
    }
}

/// The next stop signal; never, if nobody can send one.
async fn signal(stop: &mut mpsc::UnboundedReceiver<()>) {
    if stop.recv().await.is_none() {
        std::future::pending::<()>().await;
    }
}

/// Serve one connection until it closes; hold `_slot` as long.
async fn connection(
    stream: TcpStream,
    app: Router,
    builder: Arc<http1::Builder>,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            // A client that goes away or times out is normal traffic: nothing to report.
            _ = conn.as_mut() => break,
            _ = closing.wait_for(|c| *c), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Forward every SIGTERM and Ctrl-C to `stop`, saying what the first one does.
pub fn watch_stop_signals() -> anyhow::Result<mpsc::UnboundedReceiver<()>> {
    use anyhow::Context as _;
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            if first {
                tracing::info!(
                    "shutting down, finishing requests in flight (a second signal stops at once)"
                );
                first = false;
            }
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Serve `app` on a free loopback port: its address, the stop channel, and
/// how serving ended.
#[cfg(test)]
pub(crate) async fn spawn_for_test(
    app: Router,
    limits: Limits,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedSender<()>,
    impl std::future::Future<Output = Stopped>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(serve(listener, app, limits, rx));
    (addr, tx, async move { task.await.unwrap() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn app() -> Router {
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/echo", post(|body: String| async move { body }))
    }

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(300),
            max_connections: 64,
            drain: Duration::from_secs(30),
        }
    }

    async fn status_of(stream: &mut TcpStream) -> String {
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }

    async fn closed(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn half_sent_heads_are_dropped_and_health_still_answers() {
        let (addr, _stop, _done) = spawn_for_test(app(), limits()).await;
        let mut stalled = Vec::new();
        for _ in 0..40 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            stalled.push(s);
        }
        for s in &mut stalled {
            assert!(
                closed(s).await,
                "a half-sent head is dropped after the timeout"
            );
        }
        for _ in 0..40 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            assert_eq!(status_of(&mut s).await, "HTTP/1.1 200 OK");
        }
    }

    #[tokio::test]
    async fn stop_refuses_new_clients_and_finishes_requests_in_flight() {
        let (addr, stop, done) = spawn_for_test(app(), limits()).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "new connections are refused"
        );
        slow.write_all(b"world").await.unwrap();
        assert_eq!(status_of(&mut slow).await, "HTTP/1.1 200 OK");
        assert_eq!(done.await, Stopped::Drained);
    }

    #[tokio::test]
    async fn a_stalled_request_ends_at_the_deadline_or_the_second_signal() {
        let mut l = limits();
        l.drain = Duration::from_millis(300);
        let (addr, stop, done) = spawn_for_test(app(), l).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhel")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        assert_eq!(done.await, Stopped::DeadlinePassed(1));

        let (addr, stop, done) = spawn_for_test(app(), limits()).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhel")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .expect("the second signal ends the drain at once");
        assert_eq!(stopped, Stopped::Forced(1));
    }
}
