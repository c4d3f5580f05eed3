//! Serving on one single-threaded runtime per core, each accepting on its own socket bound
//! to the same address. A connection, the handlers it runs and the tasks they spawn stay on the
//! thread that accepted it: no work stealing and no cross-thread wake-ups on the hot path,
//! which on a small machine cost more than a proxied request itself.

use axum::Router;
use std::net::SocketAddr;
use tokio::sync::watch;

/// Binds `threads` listening sockets to `addr` with SO_REUSEPORT, so the kernel spreads
/// new connections evenly over the serving threads (one shared socket would let whichever
/// thread wakes first take them all).
pub fn bind(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::new();
    for _ in 0..threads.max(1) {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        listeners.push(socket.listen(1024)?.into_std()?);
    }
    Ok(listeners)
}

/// Serves `app` on one single-threaded runtime per listener until `stop` turns true, then
/// lets each finish its in-flight requests. Blocks the calling thread (use `spawn_blocking`).
pub fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: Router,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut handles = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true)?;
        let app = app.clone();
        let mut stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(
            std::thread::Builder::new()
                .name(format!("serve-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        axum::serve(
                            listener,
                            app.into_make_service_with_connect_info::<SocketAddr>(),
                        )
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                    })
                })?,
        );
    }
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(std::io::Error::other("a serving thread panicked")),
        }
    }
    result
}

/// One serving thread per core the process may use.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
