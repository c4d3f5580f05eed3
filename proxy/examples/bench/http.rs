//! A minimal keep-alive HTTP/1.1 client for load generation: one fixed request, responses
//! framed by Content-Length or chunked encoding, time to first body byte recorded. Doing
//! this by hand keeps the load generator's own cost far below the proxy's.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

pub struct Timing {
    pub total: Duration,
    /// Until the first byte of the body.
    pub first_body_byte: Duration,
    pub status: u16,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// The status code and Content-Length of a response head, read in place.
fn status_and_length(head: &[u8]) -> (u16, Option<usize>) {
    let mut lines = head.split(|&b| b == b'\n');
    let status = lines
        .next()
        .and_then(|l| l.split(|&b| b == b' ').nth(1))
        .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
        .unwrap_or(0);
    let length = lines.find_map(|l| {
        let name = b"content-length:";
        if l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name) {
            std::str::from_utf8(&l[name.len()..])
                .ok()?
                .trim()
                .parse()
                .ok()
        } else {
            None
        }
    });
    (status, length)
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Reads into the buffer's spare room (a zeroed scratch array cost a 16 KiB memset per read).
    async fn fill(&mut self) -> io::Result<()> {
        self.buf.reserve(16 * 1024);
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(())
    }

    pub async fn send(&mut self, request: &[u8]) -> io::Result<Timing> {
        let started = Instant::now();
        self.stream.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let (status, content_length) = status_and_length(&self.buf[..head_end]);
        let mut first_body_byte = None;
        if let Some(len) = content_length {
            while self.buf.len() < head_end + len {
                if first_body_byte.is_none() && self.buf.len() > head_end {
                    first_body_byte = Some(started.elapsed());
                }
                self.fill().await?;
            }
        } else {
            // Chunked: walk chunk headers until the zero-size one.
            let mut pos = head_end;
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf[pos..], b"\r\n") {
                        break pos + i;
                    }
                    self.fill().await?;
                };
                let size_text = String::from_utf8_lossy(&self.buf[pos..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| {
                            io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                        })?;
                let need = line_end + 2 + size + 2;
                while self.buf.len() < need.min(line_end + 3) {
                    self.fill().await?;
                }
                if size > 0 && first_body_byte.is_none() {
                    first_body_byte = Some(started.elapsed());
                }
                while self.buf.len() < need {
                    self.fill().await?;
                }
                pos = need;
                if size == 0 {
                    break;
                }
            }
        }
        let total = started.elapsed();
        Ok(Timing {
            total,
            first_body_byte: first_body_byte.unwrap_or(total),
            status,
        })
    }
}

pub fn post(host: SocketAddr, path: &str, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {auth}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
