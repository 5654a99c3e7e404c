//! Hijacked streams: attach and exec start take over the HTTP connection (101 Switching
//! Protocols) and bridge it to the process's monitor; plus resize and events.
//!
//! Without a TTY, output is multiplexed the way Docker's stdcopy frames it: an 8-byte
//! header (stream 1 stdout / 2 stderr, three zero bytes, a big-endian length) before each
//! chunk. Input is the client's bytes as they come; the detach keys (ctrl-p ctrl-q unless
//! told otherwise) end the session and leave the process running.

use std::sync::Arc;

use berth_container::monitor::{self, Conn};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

/// What a hijacked session carries.
#[derive(Clone)]
struct Session {
    tty: bool,
    stdin: bool,
    /// Close the process's stdin when the client's input ends.
    close_stdin: bool,
    detach_keys: Vec<u8>,
}

/// Docker's `--detach-keys` syntax: `ctrl-p,ctrl-q`, `a`, `ctrl-@`...
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_alphabetic() => b.to_ascii_lowercase() - b'a' + 1,
                b"@" => 0,
                b"[" => 27,
                b"\\" => 28,
                b"]" => 29,
                b"^" => 30,
                b"_" => 31,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid escape keys ({s}) provided"
                    )))
                }
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(ApiError::bad_request(format!(
                "Invalid escape keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers().get(hyper::header::UPGRADE).is_some()
}

fn hijack_response(tty: bool, upgrade: bool) -> Response<Body> {
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut b = Response::builder().header("Content-Type", ct);
    if upgrade {
        b = b
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp");
    } else {
        b = b.status(StatusCode::OK);
    }
    b.body(body::empty()).expect("valid response")
}

/// An output frame of the monitor as the client gets it: raw with a TTY, stdcopy-framed
/// without.
fn frame(kind: u8, payload: Vec<u8>, tty: bool) -> Vec<u8> {
    if tty {
        payload
    } else {
        mux(if kind == monitor::FRAME_STDERR { 2 } else { 1 }, &payload)
    }
}

/// stdcopy's frame: header then payload.
pub fn mux(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Pumps a monitor connection into the upgraded client connection and the client's input
/// into the monitor, until the process ends, the client detaches or goes away.
/// Told the exit record when the process ends, before the client's connection closes.
type OnExit = Box<dyn FnOnce(&[u8]) + Send>;

async fn bridge(
    upgraded: hyper::upgrade::Upgraded,
    conn: Conn,
    early: Vec<(u8, Vec<u8>)>,
    s: Session,
    on_exit: Option<OnExit>,
) {
    let io = TokioIo::new(upgraded);
    let (mut client_r, mut client_w) = tokio::io::split(io);
    let Conn {
        mut reader,
        mut writer,
    } = conn;
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let input = async move {
        if !s.stdin {
            // Nothing to forward; keep the task alive until the output ends.
            std::future::pending::<()>().await;
            return;
        }
        let mut buf = vec![0u8; 32 * 1024];
        let mut matched = 0usize;
        loop {
            let n = match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if s.close_stdin {
                        let _ = writer.close_stdin().await;
                    }
                    std::future::pending::<()>().await;
                    return;
                }
                Ok(n) => n,
            };
            let data = &buf[..n];
            // Detach keys only with a TTY, as in moby: without one, stdin is bytes to pass
            // through (a file piped in may hold any sequence).
            if s.tty && !s.detach_keys.is_empty() {
                // Keys are held back while they could be the start of the detach sequence.
                let mut out = Vec::with_capacity(n);
                for &b in data {
                    if b == s.detach_keys[matched] {
                        matched += 1;
                        if matched == s.detach_keys.len() {
                            let _ = writer.stdin(&out).await;
                            let _ = detach_tx.send(());
                            return;
                        }
                    } else {
                        out.extend_from_slice(&s.detach_keys[..matched]);
                        matched = 0;
                        if b == s.detach_keys[0] {
                            matched = 1;
                        } else {
                            out.push(b);
                        }
                    }
                }
                if writer.stdin(&out).await.is_err() {
                    return;
                }
                continue;
            }
            if writer.stdin(data).await.is_err() {
                return;
            }
        }
    };
    let output = async move {
        for (kind, payload) in early {
            if (kind == monitor::FRAME_STDOUT || kind == monitor::FRAME_STDERR)
                && client_w
                    .write_all(&frame(kind, payload, s.tty))
                    .await
                    .is_err()
            {
                return;
            }
        }
        let mut on_exit = on_exit;
        loop {
            tokio::select! {
                next = reader.next() => match next {
                    Ok(Some((kind, payload))) if kind == monitor::FRAME_STDOUT || kind == monitor::FRAME_STDERR => {
                        if client_w.write_all(&frame(kind, payload, s.tty)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some((monitor::FRAME_EXIT, payload))) => {
                        if let Some(f) = on_exit.take() {
                            f(&payload);
                        }
                        break;
                    }
                    Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                },
                _ = &mut detach_rx => break,
            }
        }
        let _ = client_w.flush().await;
        let _ = client_w.shutdown().await;
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
}

/// `POST /containers/{id}/attach?stream=&stdin=&stdout=&stderr=&detachKeys=`.
pub async fn attach(
    backend: &Arc<Backend>,
    name: &str,
    q: &Query,
    mut req: Request<Incoming>,
) -> HandlerResult {
    let svc = backend.containers.clone();
    let c = svc.get(name).map_err(|e| ApiError::from_kind(&e))?;
    let rec = c.record();
    if q.flag("logs") {
        // Replaying the log before the live stream: not done by berth (docker attach and
        // start -a never ask; `docker logs` is the way).
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "attach with logs=1 is not implemented by berth: use GET /containers/{id}/logs",
        ));
    }
    if !q.flag("stream") {
        return Err(ApiError::bad_request(
            "at least one of stream or logs must be set",
        ));
    }
    if !wants_upgrade(&req) {
        return Err(ApiError::bad_request(
            "attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)",
        ));
    }
    let tty = rec.config.tty == Some(true);
    let want_stdin = q.flag("stdin") && rec.config.open_stdin == Some(true);
    let mut flags = monitor::FLAG_EXIT;
    if q.flag("stdout") {
        flags |= monitor::FLAG_STDOUT;
    }
    if q.flag("stderr") {
        flags |= monitor::FLAG_STDERR;
    }
    let keys = parse_detach_keys(
        q.get("detachKeys")
            .filter(|k| !k.is_empty())
            .unwrap_or("ctrl-p,ctrl-q"),
    )?;
    let session = Session {
        tty,
        stdin: want_stdin,
        close_stdin: rec.config.stdin_once == Some(true),
        detach_keys: keys,
    };
    // Before the container runs, wait for its start; while it runs, join it now.
    let pending = if c.status().is_live() {
        None
    } else {
        Some(c.wait_for_start())
    };
    let dir = svc.monitor_dir(&c.id);
    svc.emit(&rec, "attach", &[]);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        // The connection is taken over first: input the client sends before the start
        // then waits in the socket, not in the HTTP server's buffer (which gives up on a
        // connection whose buffer outgrows its limit).
        let Ok(up) = on_upgrade.await else {
            return;
        };
        let (dir, ready) = match pending {
            Some(rx) => match rx.await {
                Ok(p) => (p.dir, Some(p.ready)),
                Err(_) => return,
            },
            None => (dir, None),
        };
        let conn = Conn::connect(&dir, flags).await;
        if let Some(r) = ready {
            let _ = r.send(());
        }
        let Ok(conn) = conn else { return };
        bridge(up, conn, Vec::new(), session, None).await;
    });
    Ok(hijack_response(tty, true))
}

/// `POST /containers/{id}/resize?h=&w=` and `POST /exec/{id}/resize`.
pub async fn resize(backend: &Arc<Backend>, target: ResizeTarget<'_>, q: &Query) -> HandlerResult {
    let h: u16 = q
        .get("h")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("invalid or missing h"))?;
    let w: u16 = q
        .get("w")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("invalid or missing w"))?;
    let svc = &backend.containers;
    let dir = match target {
        ResizeTarget::Container(name) => {
            let c = svc.get(name).map_err(|e| ApiError::from_kind(&e))?;
            if !c.status().is_live() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("Container {} is not running", c.id),
                ));
            }
            svc.monitor_dir(&c.id)
        }
        ResizeTarget::Exec(id) => {
            svc.get_exec(id).map_err(|e| ApiError::from_kind(&e))?;
            svc.exec_dir(id)
        }
    };
    let mut conn = Conn::connect(&dir, 0).await.map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("the process is not running: {e}"),
        )
    })?;
    conn.writer
        .resize(h, w)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(body::status(StatusCode::OK))
}

pub enum ResizeTarget<'a> {
    Container(&'a str),
    Exec(&'a str),
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create(
    backend: &Arc<Backend>,
    name: &str,
    req: Request<Incoming>,
) -> HandlerResult {
    let config: bollard_stubs::models::ExecConfig = body::collect_json(req.into_body()).await?;
    if let Some(k) = config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        parse_detach_keys(k)?;
    }
    let id = backend
        .containers
        .exec_create(name, config)
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::json(
        StatusCode::CREATED,
        &serde_json::json!({"Id": id}),
    ))
}

/// `POST /exec/{id}/start`: `{"Detach": bool, "Tty": bool}`.
///
/// Like Docker, the connection is taken over first and the process started after, so its
/// first bytes never race the 101 answer (clients that parse the answer with a buffered
/// reader would swallow them). A process that cannot start is reported in the stream, and
/// its exit code (127 or 126) in exec inspect.
pub async fn exec_start(
    backend: &Arc<Backend>,
    id: &str,
    mut req: Request<Incoming>,
) -> HandlerResult {
    let upgrade = wants_upgrade(&req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let start: serde_json::Value = {
        let bytes = body::collect(req.into_body(), 1 << 20).await?;
        if bytes.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
        }
    };
    let detach = start
        .get("Detach")
        .and_then(|d| d.as_bool())
        .unwrap_or(false);
    let svc = backend.containers.clone();
    let exec = svc
        .exec_startable(id)
        .map_err(|e| ApiError::from_kind(&e))?;
    if detach {
        svc.exec_start(id, false)
            .await
            .map_err(|e| ApiError::from_kind(&e))?;
        return Ok(body::status(StatusCode::OK));
    }
    let tty = exec.config.tty == Some(true);
    let keys = parse_detach_keys(
        exec.config
            .detach_keys
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or("ctrl-p,ctrl-q"),
    )?;
    let session = Session {
        tty,
        stdin: exec.config.attach_stdin == Some(true),
        close_stdin: true,
        detach_keys: keys,
    };
    // The client asks for the exit code as soon as the stream ends: record it first.
    let e2 = exec.clone();
    let on_exit: OnExit = Box::new(move |payload| e2.record_exit(payload));
    let id = id.to_string();
    if upgrade {
        tokio::spawn(async move {
            let Ok(up) = on_upgrade.await else {
                return;
            };
            match svc.exec_start(&id, true).await {
                Ok(Some((conn, early))) => bridge(up, conn, early, session, Some(on_exit)).await,
                Ok(None) => {}
                Err(e) => {
                    let text = format!("OCI runtime exec failed: {e}\r\n");
                    let mut io = TokioIo::new(up);
                    let _ = io
                        .write_all(&frame(monitor::FRAME_STDOUT, text.into_bytes(), tty))
                        .await;
                    let _ = io.shutdown().await;
                }
            }
        });
        return Ok(hijack_response(tty, true));
    }
    // No upgrade asked (old clients): the output as the response body.
    let (conn, early) = svc
        .exec_start(&id, true)
        .await
        .map_err(|e| ApiError::from_kind(&e))?
        .expect("an attached exec has a connection");
    let (tx, resp) = body::channel(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    });
    let Conn { mut reader, writer } = conn;
    tokio::spawn(async move {
        let _writer = writer;
        let mut on_exit = Some(on_exit);
        let mut early = early.into_iter();
        loop {
            let (kind, payload) = match early.next() {
                Some(f) => f,
                None => match reader.next().await {
                    Ok(Some(f)) => f,
                    _ => return,
                },
            };
            if kind == monitor::FRAME_EXIT {
                if let Some(f) = on_exit.take() {
                    f(&payload);
                }
                return;
            }
            if (kind == monitor::FRAME_STDOUT || kind == monitor::FRAME_STDERR)
                && tx
                    .send(Ok(Bytes::from(frame(kind, payload, tty))))
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
    Ok(resp)
}

/// `GET /exec/{id}/json`.
pub async fn exec_inspect(backend: &Arc<Backend>, id: &str) -> HandlerResult {
    let exec = backend
        .containers
        .get_exec(id)
        .map_err(|e| ApiError::from_kind(&e))?;
    let st = exec.state();
    let cmd = exec.config.cmd.clone().unwrap_or_default();
    let (entry, args) = cmd
        .split_first()
        .map(|(a, b)| (a.clone(), b.to_vec()))
        .unwrap_or_default();
    Ok(body::json(
        StatusCode::OK,
        &serde_json::json!({
            "ID": exec.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "tty": exec.config.tty == Some(true),
                "entrypoint": entry,
                "arguments": args,
                "privileged": exec.config.privileged == Some(true),
                "user": exec.config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": exec.config.attach_stdin == Some(true),
            "OpenStderr": exec.config.attach_stderr == Some(true),
            "OpenStdout": exec.config.attach_stdout == Some(true),
            "CanRemove": false,
            "ContainerID": exec.container_id,
            "DetachKeys": exec.config.detach_keys.clone().unwrap_or_default(),
            "Pid": st.pid,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn stdcopy_frames() {
        assert_eq!(mux(2, b"hi"), vec![2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }
}
