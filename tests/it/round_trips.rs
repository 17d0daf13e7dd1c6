//! What a run sends the server when it has nothing to do, counted by a proxy that reads the
//! protocol: each simple query is one round trip, so their number is the start's floor.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::harness::{server, write, TestDb};

/// Forwards to the test server and keeps the text of every simple query (`Q`) a client sends.
struct CountingProxy {
    port: u16,
    queries: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    fn start() -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        let target = format!("{}:{}", server().host, server().port);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(&target) else {
                    continue;
                };
                let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || copy(u2, c2));
                let seen = seen.clone();
                std::thread::spawn(move || read_queries(client, upstream, seen));
            }
        });
        CountingProxy { port, queries }
    }

    /// Without TLS, so the proxy can read the messages.
    fn url(&self, db: &TestDb) -> String {
        let url = db
            .url()
            .replace(&format!(":{}/", server().port), &format!(":{}/", self.port));
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode=disable")
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Client to server: the untyped startup packets (an SSL request, then the startup message),
/// then typed messages, each forwarded whole.
fn read_queries(mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    // 80877103: SSLRequest, answered by one byte; anything else is the startup message.
    while let Some(packet) = packet(&mut from, false) {
        let ssl_request = packet.get(4..8) == Some(&80877103u32.to_be_bytes()[..]);
        if to.write_all(&packet).is_err() || !ssl_request {
            break;
        }
    }
    while let Some(message) = packet(&mut from, true) {
        if message.first() == Some(&b'Q') {
            let body = message.get(5..).unwrap_or_default();
            let text = String::from_utf8_lossy(body.split(|b| *b == 0).next().unwrap_or_default());
            if let Ok(mut q) = seen.lock() {
                q.push(text.into_owned());
            }
        }
        if to.write_all(&message).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// One protocol message as it came: a type byte when `typed`, then its length and body.
fn packet(from: &mut TcpStream, typed: bool) -> Option<Vec<u8>> {
    let mut head = vec![0u8; if typed { 5 } else { 4 }];
    from.read_exact(&mut head).ok()?;
    let len = head.get(head.len() - 4..)?;
    let n = (u32::from_be_bytes(len.try_into().ok()?) as usize).saturating_sub(4);
    let mut body = vec![0u8; n];
    from.read_exact(&mut body).ok()?;
    head.extend(body);
    Some(head)
}

/// A rerun over migrations and a seed that already ran: two queries after the startup, the
/// lock's try (with `LISTEN`, the clock and which tables exist) and the reads with the unlock.
/// Both are one transaction, so no pooler can split them.
#[test]
fn a_run_with_nothing_to_do_is_two_queries() {
    let db = TestDb::new("round_trips");
    let migrations = db.work.join("migrations");
    write(&migrations, "0001_a.sql", "CREATE TABLE a (id int);\n");
    write(&migrations, "0002_b.sql", "CREATE TABLE b (id int);\n");
    write(
        &db.work.join("seeds"),
        "01_a.sql",
        "INSERT INTO a VALUES (1);\n",
    );
    let on_change = ["run", "--seed-mode", "on-change"];
    db.run(&on_change).expect(0);
    let proxy = CountingProxy::start();
    let url = proxy.url(&db);
    let mut args = on_change.to_vec();
    args.extend(["--database-url", url.as_str()]);
    let out = db.run(&args);
    out.expect(0);
    let queries = proxy.queries();
    assert_eq!(queries.len(), 2, "{queries:#?}\n{}", out.stderr);
    assert!(
        queries[0].contains("pg_try_advisory_xact_lock_shared"),
        "{queries:#?}"
    );
    // The shared lock is the transaction's: the COMMIT releases it.
    assert!(queries[1].ends_with("COMMIT"), "{queries:#?}");
    assert_eq!(db.sql("SELECT count(*) FROM a"), "1");
}
