//! A small HTTP/1.1 proxy for the sync tests: forwards requests to the real server and, on
//! command, loses or corrupts the answer to the next push or pull. Bodies are framed by
//! `Content-Length` (the server always sends one for JSON).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What to do to the next answer of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward as usual: lets a later fault of the same route hit a later request.
    Pass,
    /// Forward the request, then close the connection without answering.
    DropResponse,
    /// Answer 200 with this body instead of the server's.
    Replace(String),
    /// Answer the server's status and headers, but cut the body short.
    Truncate,
}

pub struct Proxy {
    url: String,
    faults: Arc<Mutex<Vec<(String, Fault)>>>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let faults: Arc<Mutex<Vec<(String, Fault)>>> = Arc::default();
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

    /// Applies `fault` to the next request whose path ends with `route` (e.g. `/sync/v1/push`).
    pub fn fail_next(&self, route: &str, fault: Fault) {
        self.faults.lock().unwrap().push((route.to_string(), fault));
    }
}

struct Message {
    head: String,
    body: Vec<u8>,
}

fn serve(client: TcpStream, upstream: &str, faults: &Mutex<Vec<(String, Fault)>>) {
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
            None | Some(Fault::Pass) => client.write_all(answer.head.as_bytes()).and_then(|()| client.write_all(&answer.body)),
            Some(Fault::DropResponse) => return,
            Some(Fault::Replace(body)) => client.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            ),
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

fn take_fault(faults: &Mutex<Vec<(String, Fault)>>, path: &str) -> Option<Fault> {
    let mut faults = faults.lock().unwrap();
    let index = faults
        .iter()
        .position(|(route, _)| path.ends_with(route.as_str()))?;
    Some(faults.remove(index).1)
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
