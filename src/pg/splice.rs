//! A large statement handed to the socket by reference: tokio-postgres copies a query twice
//! (into its message, then into its write buffer), so a 100 MB statement cost 300 MB. db-init
//! sends a short marker query instead, and the stream below tokio-postgres writes the real
//! `Query` message in its place straight from the migration file's shared text.
//!
//! The marker calls a function that does not exist: if it ever reached the server unreplaced,
//! the statement would fail (42883) rather than be skipped.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Below this a statement is sent the ordinary way: the copies cost less than a round of
/// bookkeeping matters.
pub const MIN_BYTES: usize = 1 << 20;

/// One connection's hand-over point between the session and its stream.
#[derive(Default)]
pub struct Slot {
    armed: AtomicBool,
    pending: Mutex<Option<Pending>>,
}

struct Pending {
    /// The marker's whole `Query` message, as tokio-postgres encodes it.
    message: Vec<u8>,
    text: Arc<String>,
    range: Range<usize>,
}

impl Slot {
    /// Arms the slot with `text[range]` and returns the marker query to send in its place;
    /// `None` when the statement cannot go as one `Query` message as it is (a NUL byte, which
    /// tokio-postgres refuses with its own error, or more than the protocol's length allows).
    pub fn arm(&self, text: &Arc<String>, range: Range<usize>) -> Option<String> {
        let body = text.get(range.clone())?;
        if body.len() > (i32::MAX as usize) - 5 || memchr::memchr(0, body.as_bytes()).is_some() {
            return None;
        }
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let marker = format!(
            "SELECT db_init_unspliced_{nanos:x}_{}_{n}()",
            std::process::id()
        );
        *self.lock() = Some(Pending {
            message: query_message(marker.as_bytes()),
            text: Arc::clone(text),
            range,
        });
        self.armed.store(true, Ordering::Release);
        Some(marker)
    }

    /// Disarms; true when the stream had taken the statement (it was sent in the marker's place).
    pub fn disarm(&self) -> bool {
        self.armed.store(false, Ordering::Release);
        self.lock().take().is_none()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending statement when `buf` holds its marker: where the marker starts.
    fn find(&self, buf: &[u8]) -> Option<usize> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let guard = self.lock();
        let p = guard.as_ref()?;
        memchr::memmem::find(buf, &p.message)
    }

    fn take(&self) -> Option<Pending> {
        self.armed.store(false, Ordering::Release);
        self.lock().take()
    }
}

/// `Query`: 'Q', the length (itself included), the text, a NUL.
fn query_message(text: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(text.len() + 6);
    m.push(b'Q');
    m.extend_from_slice(&message_len(text.len()).to_be_bytes());
    m.extend_from_slice(text);
    m.push(0);
    m
}

fn message_len(text: usize) -> i32 {
    i32::try_from(text + 5).unwrap_or(i32::MAX)
}

/// The replacement being written: header, the statement's bytes, the closing NUL.
struct Out {
    head: [u8; 5],
    text: Arc<String>,
    range: Range<usize>,
    pos: usize,
    /// How many bytes of tokio-postgres's buffer (the marker message) this stands for.
    replaces: usize,
}

impl Out {
    fn new(p: Pending) -> Out {
        let mut head = [b'Q', 0, 0, 0, 0];
        let len = message_len(p.range.len()).to_be_bytes();
        head[1..].copy_from_slice(&len);
        Out {
            head,
            replaces: p.message.len(),
            text: p.text,
            range: p.range,
            pos: 0,
        }
    }

    fn total(&self) -> usize {
        self.head.len() + self.range.len() + 1
    }

    fn rest(&self) -> &[u8] {
        let body = self
            .text
            .as_bytes()
            .get(self.range.clone())
            .unwrap_or_default();
        let head = self.head.len();
        match self.pos {
            p if p < head => self.head.get(p..).unwrap_or_default(),
            p if p < head + body.len() => body.get(p - head..).unwrap_or_default(),
            _ => b"\0",
        }
    }
}

/// A stream that writes a pending statement where its marker appears. Without a slot (or
/// unarmed) it only passes bytes through.
pub struct Spliced<W> {
    inner: W,
    slot: Option<Arc<Slot>>,
    out: Option<Out>,
    /// A replacement finished during a flush: the next write reports it.
    finished: Option<usize>,
}

impl<W> Spliced<W> {
    pub fn new(inner: W, slot: Option<Arc<Slot>>) -> Spliced<W> {
        Spliced {
            inner,
            slot,
            out: None,
            finished: None,
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: AsyncWrite + Unpin> Spliced<W> {
    /// Writes the replacement on; `Ready(Ok(n))` once all of it is written, `n` being what it
    /// stands for in the caller's buffer.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some(out) = self.out.as_mut() else {
                return Poll::Ready(Ok(0));
            };
            if out.pos >= out.total() {
                let replaces = out.replaces;
                self.out = None;
                return Poll::Ready(Ok(replaces));
            }
            match Pin::new(&mut self.inner).poll_write(cx, out.rest()) {
                Poll::Ready(Ok(0)) => {
                    self.out = None;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => out.pos += n,
                Poll::Ready(Err(e)) => {
                    self.out = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<W: AsyncRead + Unpin> AsyncRead for Spliced<W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Spliced<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(n) = this.finished.take() {
            return Poll::Ready(Ok(n));
        }
        if this.out.is_some() {
            return this.drive(cx);
        }
        let at = this.slot.as_ref().and_then(|s| s.find(buf));
        match at {
            // What comes before the marker goes first, as it is.
            Some(at) if at > 0 => {
                Pin::new(&mut this.inner).poll_write(cx, buf.get(..at).unwrap_or(buf))
            }
            Some(_) => match this.slot.as_ref().and_then(|s| s.take()) {
                Some(p) => {
                    this.out = Some(Out::new(p));
                    this.drive(cx)
                }
                None => Pin::new(&mut this.inner).poll_write(cx, buf),
            },
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.out.is_some() {
            match this.drive(cx) {
                Poll::Ready(Ok(n)) => this.finished = Some(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A writer that takes at most 7 bytes a call and is not ready every other call.
    #[derive(Default)]
    struct Trickle {
        got: Vec<u8>,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(7);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_marker_is_replaced_by_the_statement_and_the_rest_passes() {
        let slot = Arc::new(Slot::default());
        let text: Arc<String> = Arc::new("-- head\nCREATE TABLE t (id int);\n-- tail".to_string());
        let marker = slot.arm(&text, 8..33).unwrap_or_default();
        let mut s = Spliced::new(Trickle::default(), Some(Arc::clone(&slot)));
        let mut sent = b"Sxxxx".to_vec();
        sent.extend(query_message(marker.as_bytes()));
        sent.extend(b"Hyyyy");
        s.write_all(&sent).await.unwrap_or_else(|e| panic!("{e}"));
        s.flush().await.unwrap_or_else(|e| panic!("{e}"));
        let mut want = b"Sxxxx".to_vec();
        want.extend(query_message(b"CREATE TABLE t (id int);\n"));
        want.extend(b"Hyyyy");
        assert_eq!(s.get_ref().got, want);
        assert!(slot.disarm(), "the statement was taken");
    }

    #[tokio::test]
    async fn without_the_marker_nothing_changes_and_the_slot_says_so() {
        let slot = Arc::new(Slot::default());
        let text: Arc<String> = Arc::new("SELECT 1".to_string());
        assert!(slot.arm(&text, 0..8).is_some());
        let mut s = Spliced::new(Trickle::default(), Some(Arc::clone(&slot)));
        s.write_all(b"Q\0\0\0\x0dSELECT 2\0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.get_ref().got, b"Q\0\0\0\x0dSELECT 2\0");
        assert!(
            !slot.disarm(),
            "not taken: the caller must not count it as sent"
        );
        let nul: Arc<String> = Arc::new("SELECT '\0'".to_string());
        assert!(slot.arm(&nul, 0..nul.len()).is_none());
    }
}
