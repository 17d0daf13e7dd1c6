//! Opening the connection's socket as tokio-postgres would (each host and address in turn, TCP
//! with no delay, keepalives and a user timeout, or a Unix socket), so that the stream under the
//! session is db-init's and a large statement can be written from the file's text
//! (`splice.rs`). URLs that ask for host selection db-init does not do itself
//! (`target_session_attrs`, `load_balance_hosts`) are opened by tokio-postgres, without splicing.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::{Host, LoadBalanceHosts, TargetSessionAttrs};
use tokio_postgres::{AsyncMessage, CancelToken, Client, Config, Connection};
use tracing::debug;

use super::splice::{Slot, Spliced};
use super::tls::Connector;

/// Why an attempt failed: what tokio-postgres said, or the socket that would not open.
pub enum Failed {
    Pg(tokio_postgres::Error),
    Socket(io::Error),
}

/// A session's connection: its client, the NOTIFY count, and how to reach it again.
pub struct Opened {
    pub client: Client,
    pub wakeups: tokio::sync::watch::Receiver<u64>,
    pub via: Via,
}

pub enum Via {
    /// db-init's own socket, with the slot a large statement goes through.
    Ours {
        slot: Arc<Slot>,
        addr: Addr,
        hostname: Option<String>,
    },
    /// Opened by tokio-postgres (its own cancel token knows where).
    Library,
}

#[derive(Clone, Debug)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Opens one session on the first host that accepts it.
pub async fn open(config: &Config, tls: &Connector) -> Result<Opened, Failed> {
    if !plain_hosts(config) {
        let (client, connection) = config.connect(tls.clone()).await.map_err(Failed::Pg)?;
        return Ok(Opened {
            client,
            wakeups: drive(connection),
            via: Via::Library,
        });
    }
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    let count = hosts.len().max(addrs.len());
    let mut last = Failed::Socket(io::Error::new(
        io::ErrorKind::InvalidInput,
        "no host to connect to",
    ));
    for i in 0..count {
        let port = config
            .get_ports()
            .get(i)
            .or_else(|| config.get_ports().first())
            .copied()
            .unwrap_or(5432);
        let hostname = match hosts.get(i) {
            Some(Host::Tcp(h)) => Some(h.clone()),
            _ => None,
        };
        let targets = match (addrs.get(i), hosts.get(i)) {
            (Some(ip), _) => vec![Addr::Tcp(SocketAddr::new(*ip, port))],
            (None, Some(Host::Tcp(h))) => match tokio::net::lookup_host((h.as_str(), port)).await {
                Ok(found) => found.map(Addr::Tcp).collect(),
                Err(e) => {
                    last = Failed::Socket(e);
                    continue;
                }
            },
            (None, Some(Host::Unix(dir))) => vec![Addr::Unix(dir.join(format!(".s.PGSQL.{port}")))],
            (None, None) => Vec::new(),
        };
        for addr in targets {
            match open_at(config, tls, addr, hostname.clone()).await {
                Ok(opened) => return Ok(opened),
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// Hosts db-init walks itself: tokio-postgres's own rules apply to the rest.
fn plain_hosts(config: &Config) -> bool {
    let hosts = config.get_hosts().len();
    let addrs = config.get_hostaddrs().len();
    let count = hosts.max(addrs);
    count > 0
        && (hosts == 0 || addrs == 0 || hosts == addrs)
        && (config.get_ports().len() <= 1 || config.get_ports().len() == count)
        && config.get_target_session_attrs() == TargetSessionAttrs::Any
        && config.get_load_balance_hosts() == LoadBalanceHosts::Disable
}

async fn open_at(
    config: &Config,
    tls: &Connector,
    addr: Addr,
    hostname: Option<String>,
) -> Result<Opened, Failed> {
    let socket = socket(config, &addr).await.map_err(Failed::Socket)?;
    let slot = Arc::new(Slot::default());
    let connect = tls
        .for_host(hostname.as_deref().unwrap_or(""))
        .map_err(|e| Failed::Socket(io::Error::new(io::ErrorKind::InvalidInput, e)))?
        .spliced(Arc::clone(&slot));
    let stream = Spliced::new(socket, Some(Arc::clone(&slot)));
    let (client, connection) = config
        .connect_raw(stream, connect)
        .await
        .map_err(Failed::Pg)?;
    Ok(Opened {
        client,
        wakeups: drive(connection),
        via: Via::Ours {
            slot,
            addr,
            hostname,
        },
    })
}

/// The socket to `addr`, within the URL's `connect_timeout`, with its socket options.
pub async fn socket(config: &Config, addr: &Addr) -> io::Result<Socket> {
    let bound = config.get_connect_timeout().copied();
    let timed = |e: tokio::time::error::Elapsed| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connection timed out ({e})"),
        )
    };
    match addr {
        Addr::Tcp(a) => {
            let stream = match bound {
                Some(b) => tokio::time::timeout(b, TcpStream::connect(a))
                    .await
                    .map_err(timed)??,
                None => TcpStream::connect(a).await?,
            };
            stream.set_nodelay(true)?;
            let sock = SockRef::from(&stream);
            if let Some(t) = config.get_tcp_user_timeout() {
                sock.set_tcp_user_timeout(Some(*t))?;
            }
            if config.get_keepalives() {
                let mut k = TcpKeepalive::new().with_time(config.get_keepalives_idle());
                if let Some(i) = config.get_keepalives_interval() {
                    k = k.with_interval(i);
                }
                if let Some(r) = config.get_keepalives_retries() {
                    k = k.with_retries(r);
                }
                sock.set_tcp_keepalive(&k)?;
            }
            Ok(Socket::Tcp(stream))
        }
        Addr::Unix(path) => {
            let stream = match bound {
                Some(b) => tokio::time::timeout(b, UnixStream::connect(path))
                    .await
                    .map_err(timed)??,
                None => UnixStream::connect(path).await?,
            };
            Ok(Socket::Unix(stream))
        }
    }
}

/// Asks the server to cancel what the session runs, over a new connection to where it is.
pub async fn cancel(
    config: &Config,
    tls: &Connector,
    token: &CancelToken,
    via: &Via,
) -> Result<(), String> {
    let Via::Ours { addr, hostname, .. } = via else {
        return token
            .cancel_query(tls.clone())
            .await
            .map_err(|e| super::describe(&e));
    };
    let socket = socket(config, addr)
        .await
        .map_err(|e| format!("error connecting to server: {e}"))?;
    let connect = tls
        .for_host(hostname.as_deref().unwrap_or(""))
        .map_err(|e| e.to_string())?;
    token
        .cancel_query_raw(socket, connect)
        .await
        .map_err(|e| super::describe(&e))
}

/// Drives the connection and counts NOTIFYs (a replica that released the lock), so waiters
/// wake at once instead of at their next poll. Ends when the client is dropped or the socket
/// closes.
fn drive<S, T>(mut connection: Connection<S, T>) -> tokio::sync::watch::Receiver<u64>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (notified, wakeups) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => notified.send_modify(|n| *n += 1),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "connection closed");
                    break;
                }
                None => break,
            }
        }
    });
    wakeups
}

pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
