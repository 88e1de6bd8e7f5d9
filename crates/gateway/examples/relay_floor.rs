//! The least a proxy on this gateway's runtime can cost: a TCP relay that copies bytes both ways on the
//! same multi-threaded tokio runtime, parsing, deciding and recording nothing. `bench/pgbench-compare`
//! measures it as the `relay-floor` target, so the CPU per statement that no gateway on tokio avoids
//! is printed beside PgBouncer's and the gateway's.
//!
//! `cargo run --release -p portcullis-gateway --example relay_floor -- 127.0.0.1:6433 127.0.0.1:5432`

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: relay_floor LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let parse = |addr: String| {
        addr.parse::<SocketAddr>().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
        })
    };
    let (listen, upstream) = (parse(listen)?, parse(upstream)?);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(relay(listen, upstream))
}

async fn relay(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            // As the gateway does: a statement's reply goes out at once, not after Nagle's delay.
            if client.set_nodelay(true).is_err() || server.set_nodelay(true).is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}
