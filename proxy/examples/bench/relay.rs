//! The floor under any proxy on this machine: a relay that copies bytes between each client
//! connection and an upstream connection of its own, with no HTTP, no auth and no metering.
//! It is served like the proxy (one single-threaded runtime per core, connections dealt out
//! in turn by one acceptor), and like the proxy it costs four socket calls a request: a read
//! and a write each way (tokio drops readiness after a short read, so no failed read
//! follows). Whatever it adds to the direct figures, every proxy that terminates the
//! client's connection adds at least as much here.

use std::net::SocketAddr;

pub fn serve(addr: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    serve_connections(addr, move |client| async move {
        let Ok(mut client) = tokio::net::TcpStream::from_std(client) else {
            return;
        };
        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    })
}

/// Serves each connection accepted on `addr` with `relay`, as the proxy serves: one
/// single-threaded runtime per core, connections dealt out to them in turn by one acceptor.
pub fn serve_connections<F, Fut>(addr: SocketAddr, relay: F) -> anyhow::Result<()>
where
    F: Fn(std::net::TcpStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>())
        .unzip();
    let mut acceptor = Some((listener, senders));
    let mut handles = Vec::new();
    for mut handed in receivers {
        let accept = acceptor.take();
        let relay = relay.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(std::thread::spawn(move || {
            runtime.block_on(async move {
                if let Some((listener, senders)) = accept {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tokio::spawn(async move {
                        for next in (0..senders.len()).cycle() {
                            let Ok((stream, _)) = listener.accept().await else {
                                continue;
                            };
                            let _ = senders[next].send(stream.into_std().unwrap());
                        }
                    });
                }
                while let Some(client) = handed.recv().await {
                    tokio::spawn(relay(client));
                }
            })
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}
