//! The `hyper_hello` example's graceful shutdown with a real Ctrl-C, in a real child process
//! (a `harness = false` test, like `ctrl_c.rs`): the test builds the example with the cargo
//! that runs it, starts it on 127.0.0.1:0, reads the `listening on ADDR` line, makes a
//! keep-alive HTTP/1.1 request, sends SIGINT (`kill -INT`), and checks that the server closes
//! the idle connection, says `shutting down` and `served 1 connection(s)`, and exits with
//! status 0. A watchdog kills a child that hangs, so a regression fails instead of hanging.

mod exampleutil;

use exampleutil::build_example;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the child may take, all in all (generous: a loaded 2-core CI).
const WATCHDOG: Duration = Duration::from_secs(120);

/// Kills the child with SIGKILL unless told that it is done within `WATCHDOG`.
fn watchdog(pid: u32) -> mpsc::Sender<()> {
    let (done, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(WATCHDOG) {
            eprintln!("watchdog: the example hung; killing it");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    done
}

fn next_line(stdout: &mut BufReader<ChildStdout>, seen: &mut Vec<String>) -> Option<String> {
    let mut line = String::new();
    match stdout.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let line = line.trim_end().to_owned();
            seen.push(line.clone());
            Some(line)
        }
    }
}

/// Reads one HTTP/1.1 response (head and a `content-length` body) from `stream`.
fn read_response(stream: &mut TcpStream) -> Result<String, String> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or_else(|| format!("no content-length in {head:?}"))?;
            if got.len() >= end + 4 + len {
                return Ok(String::from_utf8_lossy(&got).into_owned());
            }
        }
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed mid-response: {got:?}"));
        }
        got.extend_from_slice(&chunk[..n]);
    }
}

fn ctrl_c_shuts_the_example_down_gracefully(child: &mut Child) -> Result<(), String> {
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut seen = Vec::new();
    let line = next_line(&mut stdout, &mut seen).ok_or("the example printed nothing")?;
    let addr = line
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();

    // A keep-alive request: the connection stays open afterwards.
    let mut conn = TcpStream::connect(&addr).map_err(|e| format!("connect {addr}: {e}"))?;
    conn.set_read_timeout(Some(WATCHDOG))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let reply = read_response(&mut conn)?;
    if !reply.starts_with("HTTP/1.1 200 OK\r\n") || !reply.ends_with("\r\n\r\nHello, world!") {
        return Err(format!("unexpected reply {reply:?}"));
    }

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .map_err(|e| format!("running kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -INT: {status}"));
    }
    // The server closes the idle keep-alive connection: EOF (or a reset).
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => {}
        Ok(_) => return Err(format!("unexpected bytes after the shutdown: {rest:?}")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(format!("reading the close: {e}")),
    }
    while next_line(&mut stdout, &mut seen).is_some() {}
    let exit = child.wait().map_err(|e| e.to_string())?;
    if !exit.success() {
        return Err(format!("exit status {exit}, output {seen:?}"));
    }
    if seen[1..] != ["shutting down", "served 1 connection(s)"] {
        return Err(format!("unexpected output {seen:?}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let name = "ctrl_c_shuts_the_example_down_gracefully";
    let outcome = build_example("hyper_hello", &["hyper"]).and_then(|exe| {
        let mut child = Command::new(exe)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning the example: {e}"))?;
        let done = watchdog(child.id());
        let outcome = ctrl_c_shuts_the_example_down_gracefully(&mut child);
        if outcome.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = done.send(());
        outcome
    });
    match outcome {
        Ok(()) => {
            println!("test {name} ... ok");
            println!("1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("test {name} ... FAILED\n    {why}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}
