//! The floor under an HTTP proxy built on the proxy's own stack: hyper's HTTP/1.1 server
//! toward the client and hyper's HTTP/1.1 client toward the upstream, each request passed on
//! as it came (head and body streamed through) and each answer passed back, with nothing else:
//! no auth, no routing, no metering, no JSON. Served as the bare relay (`relay.rs`) is, with
//! one upstream connection per client connection. What the proxy costs above this is its own
//! work; what this costs above the bare relay is what HTTP at both ends costs with hyper.

use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;

type Upstream = Arc<tokio::sync::Mutex<client::SendRequest<Incoming>>>;

pub fn serve(addr: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    crate::relay::serve_connections(addr, move |client| relay(client, upstream))
}

async fn relay(client: std::net::TcpStream, upstream: SocketAddr) {
    let Ok(client) = tokio::net::TcpStream::from_std(client) else {
        return;
    };
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let Ok((sender, conn)) = client::handshake(TokioIo::new(server)).await else {
        return;
    };
    tokio::spawn(conn);
    let sender: Upstream = Arc::new(tokio::sync::Mutex::new(sender));
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let sender = sender.clone();
        async move {
            // One request at a time per connection (HTTP/1.1): the lock is never contended.
            let mut sender = sender.lock().await;
            sender.ready().await?;
            let res = sender.send_request(req).await?;
            Ok::<_, hyper::Error>(res)
        }
    });
    let _ = server::Builder::new()
        .serve_connection(TokioIo::new(client), service)
        .await;
}
