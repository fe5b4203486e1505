//! A minimal HTTP/1.1 client over one TCP connection: writes ready request
//! bytes and reads one `Content-Length` response. Cheap enough to hold ten
//! thousand long-polls, and exact about when a response arrived.

use std::net::SocketAddr;

use anyhow::{Result, anyhow, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Responses larger than this are refused (nothing the harness asks for
/// comes close).
const MAX_RESPONSE: usize = 4 << 20;

/// One response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What the head of a response says, once complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes up to and including the blank line.
    pub head_len: usize,
    pub content_length: usize,
}

/// Parses a response head from `buf`; `Ok(None)` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("response head larger than 64 KiB");
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| anyhow!("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: {status_line:?}");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| anyhow!("bad content-length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the load client");
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_RESPONSE {
        bail!("response body of {content_length} bytes is too large");
    }
    Ok(Some(Head {
        status,
        head_len: end + 4,
        content_length,
    }))
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Sends `request` (complete bytes) without reading the answer.
    pub async fn send(&mut self, request: &[u8]) -> Result<()> {
        self.stream.write_all(request).await?;
        Ok(())
    }

    /// Reads the next response.
    pub async fn receive(&mut self) -> Result<Response> {
        loop {
            if let Some(head) = parse_head(&self.buf)? {
                let total = head.head_len + head.content_length;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                let body = self.buf[head.head_len..total].to_vec();
                self.buf.drain(..total);
                return Ok(Response {
                    status: head.status,
                    body,
                });
            }
            self.fill().await?;
        }
    }

    /// Sends `request` and reads its response.
    pub async fn request(&mut self, request: &[u8]) -> Result<Response> {
        self.send(request).await?;
        self.receive().await
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// A complete request: method, target, extra headers, optional JSON body.
pub fn request_bytes(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    json_body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    let mut bytes = match json_body {
        Some(body) => {
            out.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ));
            let mut b = out.into_bytes();
            b.extend_from_slice(body);
            b
        }
        None => {
            out.push_str("\r\n");
            out.into_bytes()
        }
    };
    bytes.shrink_to_fit();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_and_partial_heads() {
        let full =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        let head = parse_head(full).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, 11);
        assert_eq!(&full[head.head_len..], b"{\"ok\":true}");
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len").unwrap(), None);
        let empty = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!((empty.status, empty.content_length), (204, 0));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; 70 * 1024]).is_err());
    }

    #[test]
    fn builds_requests_with_and_without_bodies() {
        let get = request_bytes("GET", "/healthz", &[("x-a", "1")], None);
        assert_eq!(get, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-a: 1\r\n\r\n");
        let post = request_bytes("POST", "/p", &[], Some(b"{}"));
        assert_eq!(
            post,
            b"POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[tokio::test]
    async fn reads_responses_split_across_packets_and_back_to_back() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 256];
            let _ = s.read(&mut req).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s.write_all(b"ngth: 5\r\n\r\nhel").await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s.write_all(b"loHTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\nno")
                .await
                .unwrap();
        });
        let mut c = Connection::open(addr).await.unwrap();
        let first = c.request(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert_eq!(
            first,
            Response {
                status: 200,
                body: b"hello".to_vec()
            }
        );
        let second = c.receive().await.unwrap();
        assert_eq!(second.status, 401);
        assert_eq!(second.body, b"no");
        server.await.unwrap();
        assert!(c.receive().await.is_err(), "a closed connection is an error");
    }
}
