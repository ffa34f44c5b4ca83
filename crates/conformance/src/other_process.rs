//! A second process on one store, for the two-process tests of [`shared`](crate::shared):
//! the test binary runs the same test again in a child process ([`OtherProcess::start`]),
//! which sees that it is the other process ([`child`]), opens the parent's location and
//! does its half of the work, talking with the parent in lines: the child writes
//! `conformance-other-process:<message>` lines to its standard output, the parent writes
//! plain lines to the child's standard input.
//!
//! The child is the running test binary ([`std::env::current_exe`]) given
//! `--exact <this test's name> --nocapture --test-threads=1 --include-ignored`, so it runs
//! this one test and nothing else, and [`VAR`] names the location in its text form
//! ([`StoreLocation::to_text`]). The test's name is the name libtest gives the thread
//! running it.
//!
//! Every wait for the child is bounded ([`CHILD_WAIT`]): a child that hangs or dies fails
//! the test with what it printed. The child is killed and reaped when its handle drops,
//! however the test ends; a child whose parent is gone finds its standard input closed and
//! stops.

use std::borrow::Borrow;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store_api::{Backend, StoreLocation, error_chain};

use crate::harness::relaxed_options;

/// The variable that tells a test it runs as the other process, holding the location to
/// open as text.
pub const VAR: &str = "CONFORMANCE_OTHER_PROCESS_LOCATION";

/// What starts each line the child writes for the parent.
const PREFIX: &str = "conformance-other-process:";

/// The longest the parent waits for any one message of the child, or for it to exit.
pub const CHILD_WAIT: Duration = Duration::from_secs(30);

/// The parent's handle on the other process.
pub struct OtherProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<String>,
    /// Everything else the child wrote (libtest's lines, a panic message), for errors.
    output: Arc<Mutex<String>>,
    test: String,
}

/// The name of the running test, as `--exact` takes it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => panic!(
            "a two-process test needs the name of the running test, which libtest gives \
             the thread it runs the test on; this thread has none (run the tests with more \
             than one test thread, or with cargo nextest)"
        ),
    }
}

/// Appends every line of `from` to `output`, sending the messages (lines holding
/// [`PREFIX`]) on `messages` instead when given.
fn collect_lines(
    from: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    messages: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            // libtest may have started the line with `test <name> ... `.
            if let (Some(at), Some(messages)) = (line.find(PREFIX), &messages) {
                let _ = messages.send(line[at + PREFIX.len()..].to_owned());
            } else {
                let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
                output.push_str(&line);
                output.push('\n');
            }
        }
    });
}

impl OtherProcess {
    /// Starts the running test again in a child process that opens `location` (durability
    /// `Relaxed`), and returns once it has opened it.
    pub fn start<B: Backend>(location: &B::Location) -> OtherProcess {
        let test = current_test();
        let text = location.to_text().unwrap_or_else(|| {
            panic!(
                "the {} location {location:?} has no text form to give another process",
                B::NAME
            )
        });
        let exe = std::env::current_exe().expect("the path of the test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                &test,
                "--nocapture",
                "--test-threads=1",
                "--include-ignored",
            ])
            .env(VAR, text)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the test binary as the other process");
        let output = Arc::new(Mutex::new(String::new()));
        let (send, messages) = channel();
        let stdout = child.stdout.take().expect("the child's standard output");
        let stderr = child.stderr.take().expect("the child's standard error");
        collect_lines(stdout, Arc::clone(&output), Some(send));
        collect_lines(stderr, Arc::clone(&output), None);
        let mut other = OtherProcess {
            stdin: child.stdin.take(),
            child,
            messages,
            output,
            test,
        };
        other.expect("opened");
        other
    }

    /// Fails the test with `why` and what the child printed.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the reader threads take in the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let output = self
            .output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        panic!(
            "the other process (test {}): {why}; it printed:\n{output}",
            self.test
        )
    }

    /// The child's next message, which must start with `word`: the rest of it.
    pub fn expect(&mut self, word: &str) -> String {
        let message = match self.messages.recv_timeout(CHILD_WAIT) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no {word:?} within {CHILD_WAIT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.fail(&format!("it ended before saying {word:?}"))
            }
        };
        match message.strip_prefix(word) {
            Some(rest) => rest.trim_start().to_owned(),
            None => self.fail(&format!("it said {message:?}, not {word:?}")),
        }
    }

    /// Sends `line` to the child.
    pub fn send(&mut self, line: &str) {
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Ok(()),
        };
        if let Err(e) = sent {
            self.fail(&format!("sending {line:?}: {e}"));
        }
    }

    /// What each of the child's writer threads reported with
    /// [`OtherSide::report`], in its order.
    pub fn results(&mut self) -> Vec<Vec<String>> {
        let mut threads: Vec<Vec<String>> = Vec::new();
        loop {
            let message = match self.messages.recv_timeout(CHILD_WAIT) {
                Ok(message) => message,
                Err(_) => self.fail("no end of its results"),
            };
            if message == "done" {
                return threads;
            }
            let Some((thread, item)) = message
                .strip_prefix("result ")
                .and_then(|rest| rest.split_once(' '))
                .and_then(|(t, item)| Some((t.parse::<usize>().ok()?, item)))
            else {
                self.fail(&format!("it said {message:?}, not a result"))
            };
            if threads.len() <= thread {
                threads.resize(thread + 1, Vec::new());
            }
            threads[thread].push(item.to_owned());
        }
    }

    /// Kills the child with `SIGKILL` (no clean exit: nothing of it runs on) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("killing the other process");
        self.child.wait().expect("reaping the other process");
    }

    /// Tells the child it is done (closes its standard input) and waits for it to pass
    /// its half of the test.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + CHILD_WAIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => self.fail(&format!("it failed ({status})")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => self.fail(&format!("it did not exit within {CHILD_WAIT:?}")),
                Err(e) => self.fail(&format!("waiting for it: {e}")),
            }
        }
    }
}

impl Drop for OtherProcess {
    /// Kills and reaps the child unless it has exited.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The other process's side: its own instance on the parent's store.
pub struct OtherSide<B> {
    /// The instance this process opened on the parent's location.
    pub backend: B,
}

/// `Some` when this process is the other process of a two-process test
/// ([`VAR`] is set): the backend opened on the parent's location (durability `Relaxed`),
/// after telling the parent so.
pub fn child<B: Backend>() -> Option<OtherSide<B>> {
    let text = std::env::var(VAR).ok()?;
    let location = B::Location::from_text(&text).unwrap_or_else(|e| {
        panic!(
            "the location {text:?} given by the parent: {}",
            error_chain(&e)
        )
    });
    let backend = B::open(location.borrow(), relaxed_options()).unwrap_or_else(|e| {
        panic!(
            "opening the {} store at {text} in the other process: {}",
            B::NAME,
            error_chain(&e)
        )
    });
    let side = OtherSide { backend };
    side.say("opened");
    Some(side)
}

impl<B> OtherSide<B> {
    /// Writes `message` for the parent.
    pub fn say(&self, message: &str) {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "\n{PREFIX}{message}").expect("writing to the parent");
        stdout.flush().expect("writing to the parent");
    }

    /// Waits for the parent's next line, which must be `word`, and returns the rest of it.
    /// Panics (ending this process's half) when the parent is gone.
    pub fn expect(&self, word: &str) -> String {
        let mut line = String::new();
        let read = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .expect("reading from the parent");
        assert!(
            read > 0,
            "the parent closed the line while {word:?} was due"
        );
        let line = line.trim_end();
        match line.strip_prefix(word) {
            Some(rest) => rest.trim_start().to_owned(),
            None => panic!("the parent said {line:?}, not {word:?}"),
        }
    }

    /// Reports what each writer thread did (`results[t]`, in its order), then `done`:
    /// the parent reads it with [`OtherProcess::results`].
    pub fn report(&self, results: &[Vec<String>]) {
        for (thread, items) in results.iter().enumerate() {
            for item in items {
                self.say(&format!("result {thread} {item}"));
            }
        }
        self.say("done");
    }
}
