//! A small HTTP/1.1 proxy for the sync tests: forwards requests to the real server and, on
//! command, loses or corrupts the answer to the next push or pull. Bodies are framed by
//! `Content-Length` (the server always sends one for JSON), or by chunked transfer coding for a
//! request that uses it (forwarded as it came).
//!
//! It counts the body bytes it forwarded per request path ([`Proxy::body_bytes`]), so an
//! attachment test can assert how much of a file went over the wire, and
//! [`Fault::CutRequestBody`] cuts an upload chunk mid-body.
//!
//! Besides the scripted faults of [`Proxy::fail_next`], [`Proxy::set_chaos`] makes it pick a
//! fault for every sync request from a seeded generator ([`Chaos`]), counting them by kind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to do to the next answer of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward as usual: lets a later fault of the same route hit a later request.
    Pass,
    /// Forward the request, then close the connection without answering.
    DropResponse,
    /// Answer 200 with this body instead of the server's.
    Replace(String),
    /// Answer the server's status and headers, but cut the body short (a reset mid-body).
    Truncate,
    /// Close the connection without forwarding the request.
    DropRequest,
    /// Forward after this many milliseconds.
    Delay(u64),
    /// Answer 503 with `Retry-After` (seconds) without forwarding.
    Unavailable(u64),
    /// Forward the request twice; answer with the second answer.
    Duplicate,
    /// Forward the request's head and only the first this-many bytes of its body, then close
    /// both connections (a connection lost mid-upload: the server never sees the whole body).
    CutRequestBody(u64),
}

impl Fault {
    /// The kind's name, for the counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::DropResponse => "drop_response",
            Fault::Replace(_) => "replace",
            Fault::Truncate => "reset_mid_body",
            Fault::DropRequest => "drop_request",
            Fault::Delay(_) => "delay",
            Fault::Unavailable(_) => "unavailable_503",
            Fault::Duplicate => "duplicate",
            Fault::CutRequestBody(_) => "cut_request_body",
        }
    }
}

/// Random faults on every request under `/sync/`: each request gets one with probability
/// `rate` (0.0–1.0), the kind drawn uniformly, from a generator seeded with `seed`.
pub struct Chaos {
    rng: StdRng,
    rate: f64,
}

impl Chaos {
    pub fn new(seed: u64, rate: f64) -> Chaos {
        Chaos {
            rng: StdRng::seed_from_u64(seed),
            rate,
        }
    }

    fn pick(&mut self) -> Fault {
        if !self.rng.random_bool(self.rate.clamp(0.0, 1.0)) {
            return Fault::Pass;
        }
        match self.rng.random_range(0..6) {
            0 => Fault::DropRequest,
            1 => Fault::DropResponse,
            2 => Fault::Delay(self.rng.random_range(1..60)),
            3 => Fault::Unavailable(1),
            4 => Fault::Truncate,
            _ => Fault::Duplicate,
        }
    }
}

#[derive(Default)]
struct State {
    scripted: Vec<(String, Fault)>,
    chaos: Option<Chaos>,
    counts: BTreeMap<&'static str, u64>,
    /// Request body bytes forwarded to the server, per request path (query included).
    body_bytes: BTreeMap<String, u64>,
}

pub struct Proxy {
    url: String,
    faults: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let faults: Arc<Mutex<State>> = Arc::default();
        let shared = Arc::clone(&faults);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, faults) = (upstream.clone(), Arc::clone(&shared));
                std::thread::spawn(move || serve(client, &upstream, &faults));
            }
        });
        Proxy { url, faults }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies `fault` to the next request whose path ends with `route` (e.g. `/sync/v1/push`),
    /// or, when `route` ends with `/`, whose path starts with it (e.g. `/sync/v1/blobs/uploads/`:
    /// every chunk `PATCH` of any upload, but not the `POST` that opens one).
    pub fn fail_next(&self, route: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .scripted
            .push((route.to_string(), fault));
    }

    /// Random faults on sync requests from now on (`None`: none).
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.faults.lock().unwrap().chaos = chaos;
    }

    /// How many faults of each kind were applied so far (scripted and random).
    pub fn fault_counts(&self) -> BTreeMap<&'static str, u64> {
        self.faults.lock().unwrap().counts.clone()
    }

    /// The request body bytes forwarded to the server so far (a cut body counts what went
    /// through, a duplicated request twice) by requests whose path starts with `prefix`
    /// (e.g. `/sync/v1/blobs/uploads/` for the chunks of every upload).
    pub fn body_bytes(&self, prefix: &str) -> u64 {
        self.faults
            .lock()
            .unwrap()
            .body_bytes
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// Forgets the counted body bytes (before the step a test measures).
    pub fn reset_body_bytes(&self) {
        self.faults.lock().unwrap().body_bytes.clear();
    }
}

fn count_body(faults: &Mutex<State>, path: &str, bytes: usize) {
    *faults
        .lock()
        .unwrap()
        .body_bytes
        .entry(path.to_string())
        .or_default() += bytes as u64;
}

struct Message {
    head: String,
    body: Vec<u8>,
}

fn serve(client: TcpStream, upstream: &str, faults: &Mutex<State>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let mut server_reader = BufReader::new(server.try_clone().unwrap());
    while let Some(request) = read_message(&mut reader) {
        let path = request
            .head
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let fault = take_fault(faults, &path);
        match fault {
            Some(Fault::DropRequest) => return,
            Some(Fault::CutRequestBody(keep)) => {
                let keep = request
                    .body
                    .len()
                    .min(usize::try_from(keep).unwrap_or(usize::MAX));
                let _ = server
                    .write_all(request.head.as_bytes())
                    .and_then(|()| server.write_all(&request.body[..keep]))
                    .and_then(|()| server.flush());
                count_body(faults, &path, keep);
                let _ = server.shutdown(std::net::Shutdown::Both);
                let _ = client.shutdown(std::net::Shutdown::Both);
                return;
            }
            Some(Fault::Delay(ms)) => std::thread::sleep(Duration::from_millis(ms)),
            Some(Fault::Unavailable(secs)) => {
                let body = r#"{"error":"unavailable"}"#;
                let _ = client.write_all(
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {secs}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
                return;
            }
            Some(Fault::Duplicate)
                if server
                    .write_all(request.head.as_bytes())
                    .and_then(|()| server.write_all(&request.body))
                    .is_err()
                    || read_message(&mut server_reader).is_none() =>
            {
                return;
            }
            Some(Fault::Duplicate) => count_body(faults, &path, request.body.len()),
            _ => {}
        }
        count_body(faults, &path, request.body.len());
        if server
            .write_all(request.head.as_bytes())
            .and_then(|()| server.write_all(&request.body))
            .is_err()
        {
            return;
        }
        let Some(answer) = read_message(&mut server_reader) else {
            return;
        };
        let written = match fault {
            None | Some(Fault::Pass | Fault::Delay(_) | Fault::Duplicate) => client.write_all(answer.head.as_bytes()).and_then(|()| client.write_all(&answer.body)),
            Some(Fault::DropResponse) => return,
            Some(Fault::Replace(body)) => client.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            ),
            Some(Fault::DropRequest | Fault::Unavailable(_) | Fault::CutRequestBody(_)) => return,
            Some(Fault::Truncate) => {
                let _ = client.write_all(answer.head.as_bytes());
                let _ = client.write_all(&answer.body[..answer.body.len() / 2]);
                return;
            }
        };
        if written.is_err() {
            return;
        }
    }
}

fn take_fault(faults: &Mutex<State>, path: &str) -> Option<Fault> {
    let mut state = faults.lock().unwrap();
    let fault = match state.scripted.iter().position(|(route, _)| {
        path.ends_with(route.as_str()) || (route.ends_with('/') && path.starts_with(route.as_str()))
    }) {
        Some(index) => state.scripted.remove(index).1,
        None if path.contains("/sync/") => state.chaos.as_mut()?.pick(),
        None => return None,
    };
    if fault != Fault::Pass {
        *state.counts.entry(fault.kind()).or_default() += 1;
    }
    Some(fault)
}

/// Reads one HTTP message (head through the blank line, then `Content-Length` bytes).
fn read_message(reader: &mut BufReader<TcpStream>) -> Option<Message> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        return read_chunked(reader, head);
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>())
        })
        .and_then(Result::ok)
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Message { head, body })
}

/// Reads a chunked body as it came (sizes, data, trailers), so it is forwarded unchanged; the
/// counted body is the whole coded body.
fn read_chunked(reader: &mut BufReader<TcpStream>, head: String) -> Option<Message> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        body.extend_from_slice(line.as_bytes());
        let size = usize::from_str_radix(line.trim().split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer).ok()? == 0 {
                    return None;
                }
                body.extend_from_slice(trailer.as_bytes());
                if trailer == "\r\n" {
                    return Some(Message { head, body });
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        reader.read_exact(&mut body[start..]).ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver};

    /// An upstream that answers each whole request with its body length, and reports every
    /// request it read (or `None` when a connection ended mid-message).
    fn upstream() -> (String, Receiver<Option<(String, usize)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    loop {
                        let Some(message) = read_message(&mut reader) else {
                            let _ = tx.send(None);
                            return;
                        };
                        let line = message.head.lines().next().unwrap_or("").to_string();
                        let _ = tx.send(Some((line, message.body.len())));
                        let body = message.body.len().to_string();
                        let _ = writer.write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        );
                    }
                });
            }
        });
        (addr, rx)
    }

    fn send(url: &str, method: &str, path: &str, body: &[u8]) -> Option<String> {
        let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
        stream
            .write_all(
                format!(
                    "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .unwrap();
        stream.write_all(body).unwrap();
        read_message(&mut BufReader::new(stream)).map(|m| String::from_utf8(m.body).unwrap())
    }

    #[test]
    fn cuts_a_chunk_mid_body_and_counts_body_bytes_per_prefix() {
        let (upstream, seen) = upstream();
        let proxy = Proxy::start(&upstream);
        let chunk = vec![7u8; 1000];
        // The POST that opens an upload is not a chunk route; a PATCH under uploads/ is.
        proxy.fail_next("/sync/v1/blobs/uploads/", Fault::CutRequestBody(300));
        assert_eq!(
            send(proxy.url(), "POST", "/sync/v1/blobs/uploads", b"{}").as_deref(),
            Some("2")
        );
        assert_eq!(
            send(proxy.url(), "PATCH", "/sync/v1/blobs/uploads/abc", &chunk),
            None
        );
        assert_eq!(
            send(proxy.url(), "PATCH", "/sync/v1/blobs/uploads/abc", &chunk).as_deref(),
            Some("1000")
        );
        // The server read whole only the POST and the second PATCH: the cut chunk never arrived.
        std::thread::sleep(Duration::from_millis(100));
        let whole: Vec<(String, usize)> = std::iter::from_fn(|| seen.try_recv().ok())
            .flatten()
            .collect();
        assert_eq!(
            whole,
            [
                ("POST /sync/v1/blobs/uploads HTTP/1.1".to_string(), 2),
                (
                    "PATCH /sync/v1/blobs/uploads/abc HTTP/1.1".to_string(),
                    1000
                )
            ]
        );
        assert_eq!(proxy.body_bytes("/sync/v1/blobs/uploads/"), 1300);
        assert_eq!(proxy.body_bytes("/sync/v1/blobs/"), 1302);
        assert_eq!(proxy.fault_counts().get("cut_request_body"), Some(&1));
        proxy.reset_body_bytes();
        assert_eq!(proxy.body_bytes("/"), 0);
    }
}
