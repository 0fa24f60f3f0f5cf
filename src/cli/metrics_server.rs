//! `--metrics-addr`: a small HTTP/1.1 server (hyper) for Prometheus and Kubernetes.
//! `GET /metrics` is the producer's counters in the Prometheus text format, `/healthz`
//! answers 200 while the process serves, `/readyz` 200 while the producer can do its job
//! (connected, the topic's metadata known, the buffer not full) and 503 otherwise.
//! Started by `produce` before it connects, so the probes answer from the first second.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kafka_producer::{Producer, prometheus};
use tokio::net::TcpListener;

use super::CliError;

/// The producer, once it has connected.
pub type Served = Arc<OnceLock<Arc<Producer>>>;

/// Listens on `addr` now (so a taken port fails before anything connects) and serves
/// in the background until the process ends.
pub async fn start(addr: SocketAddr) -> Result<Served, CliError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        CliError::usage(format!(
            "cannot listen on --metrics-addr {addr}: {e}; it must be a free port on an address of this machine (or unset KAFKA_PRODUCER_METRICS_ADDR)"
        ))
    })?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    let served: Served = Arc::default();
    let state = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: the next accept may work.
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(answer(&request, &state)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended");
                }
            });
        }
    });
    Ok(served)
}

fn answer(request: &Request<Incoming>, served: &Served) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
    }
    let producer = served.get();
    match (request.uri().path(), producer) {
        ("/healthz", _) => text(StatusCode::OK, "ok\n".into()),
        ("/readyz", None) => text(StatusCode::SERVICE_UNAVAILABLE, "connecting\n".into()),
        ("/readyz", Some(p)) => match p.readiness().not_ready_because() {
            None => text(StatusCode::OK, "ready\n".into()),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        ("/metrics", None) => text(StatusCode::SERVICE_UNAVAILABLE, "connecting\n".into()),
        ("/metrics", Some(p)) => {
            let mut response = Response::new(Full::new(Bytes::from(p.prometheus_text())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus::CONTENT_TYPE),
            );
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
