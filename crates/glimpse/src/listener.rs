//! The HTTP listener: hyper's connection builder, as `axum::serve` runs it, plus the limits
//! `axum::serve` does not offer, so that slow or flooding clients cannot hold the service
//! (`[http]` in the configuration):
//! - a request head must arrive within `header_timeout_seconds` (hyper's HTTP/1 header-read
//!   timer; a head trickled a byte at a time is cut), and a connection with no request in
//!   flight that moves no byte for as long is closed ([`Activity`]: hyper's timer starts only
//!   at a head's first byte, so a silent or idle keep-alive connection would stay forever);
//! - a request body must keep sending ([`TimedBody`]: no byte for `body_idle_seconds`, or
//!   less than `body_min_rate` bytes a second on average, ends the body with an error, which
//!   every handler already treats as a failed request: an upload goes back to `queued`);
//! - at most `max_connections` connections are open; past it the listener stops accepting
//!   (the kernel's backlog holds the rest) until one closes.
//!
//! Graceful shutdown as `axum::serve`: stop accepting, let each connection finish its request.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use glimpse_core::config::HttpConfig;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The limits of [`serve`], from `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_idle: Duration,
    pub body_min_rate: u64,
    pub max_connections: usize,
}

impl From<&HttpConfig> for Limits {
    fn from(c: &HttpConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(c.header_timeout_seconds.max(1)),
            body_idle: Duration::from_secs(c.body_idle_seconds.max(1)),
            body_min_rate: c.body_min_rate,
            max_connections: c.max_connections.max(1),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = {
            let (app, activity) = (app.clone(), activity.clone());
            tower::service_fn(move |r: hyper::Request<Incoming>| {
                let (app, activity) = (app.clone(), activity.clone());
                let r = r.map(|b| Body::new(TimedBody::new(b, &limits)));
                async move {
                    let _busy = activity.request();
                    app.oneshot(r).await
                }
            })
        };
        let io = TokioIo::new(Watched {
            stream,
            activity: activity.clone(),
        });
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn =
                builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            let mut conn = pin!(conn);
            let mut idle = pin!(activity.idle_for(limits.header_timeout));
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.wait_for(|stop| *stop) => conn.as_mut().graceful_shutdown(),
                    () = &mut idle => {
                        tracing::debug!("closing a connection idle for the header timeout");
                        break;
                    }
                }
            }
            drop(open);
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// What a connection is doing: requests in flight, and when it last moved a byte (in
/// milliseconds since `epoch`).
struct Activity {
    epoch: Instant,
    last: AtomicU64,
    requests: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Counts a request in flight until the guard drops.
    fn request(self: &Arc<Self>) -> impl Drop + use<> {
        struct Busy(Arc<Activity>);
        impl Drop for Busy {
            fn drop(&mut self) {
                self.0.touch();
                self.0.requests.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once no request is in flight and no byte has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed));
            if Instant::now() >= last + limit && self.requests.load(Ordering::Relaxed) == 0 {
                return;
            }
            tokio::time::sleep_until((last + limit).max(Instant::now() + limit / 4)).await;
        }
    }
}

/// The connection's socket, noting each byte it moves in the connection's [`Activity`].
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The error a request body ends with when the client stops sending.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client stopped sending the request body")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body with a deadline: it starts `idle` after the first read, each data frame of
/// `n` bytes moves it `n / min_rate` seconds on (from now, if it had passed while the server
/// was not reading), never more than `idle` from now. Checked only while the server waits for
/// the client, so time the server itself spends elsewhere never counts against the client.
pub struct TimedBody {
    inner: Incoming,
    idle: Duration,
    min_rate: u64,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, limits: &Limits) -> TimedBody {
        TimedBody {
            inner,
            idle: limits.body_idle,
            min_rate: limits.body_min_rate,
            deadline: None,
        }
    }

    fn received(&mut self, bytes: usize) {
        let now = Instant::now();
        let cap = now + self.idle;
        let next = match (&self.deadline, self.min_rate) {
            (Some(d), rate) if rate > 0 => {
                let allowance = Duration::from_secs_f64(bytes as f64 / rate as f64);
                (d.deadline().max(now) + allowance).min(cap)
            }
            _ => cap,
        };
        match &mut self.deadline {
            Some(d) => d.as_mut().reset(next),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(next))),
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.deadline.is_none() {
            this.deadline = Some(Box::pin(tokio::time::sleep(this.idle)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received(data.len());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    tracing::info!("request body timed out: the client stopped sending");
                    Poll::Ready(Some(Err(BodyTimeout.into())))
                }
                _ => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
