//! A shell pipeline, `printf … | tr a-z A-Z | sort`, whose bytes are moved by the event loop
//! through async pipes (`evloop::process`), then a second one where the kernel moves them.
//!
//! ```text
//! $ cargo run -p evloop --example subprocess_pipeline
//! APPLE
//! FIG
//! PEAR
//! exit statuses: printf 0, tr 0, sort 0
//! through an fd handed over: 3 lines
//! ```

use std::error::Error;
use std::process::Stdio;

use evloop::process::Command;
use futures_lite::AsyncReadExt;

fn main() -> Result<(), Box<dyn Error>> {
    evloop::run(async {
        let mut printf = Command::new("printf")
            .arg("pear\\napple\\nfig\\n")
            .stdout(Stdio::piped())
            .spawn()?;
        let mut tr = Command::new("tr")
            .args(["a-z", "A-Z"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut sort = Command::new("sort")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;

        // Two pumps, as tasks on the loop: printf → tr, tr → sort. Each closes the next
        // child's stdin when its input ends (the writer is dropped), so the next one ends too.
        let (from, mut to) = (printf.stdout.take(), tr.stdin.take());
        let pump1 = evloop::spawn(async move {
            let (Some(from), Some(to)) = (from, to.as_mut()) else {
                return Ok(0);
            };
            futures_lite::io::copy(from, to).await
        });
        let (from, mut to) = (tr.stdout.take(), sort.stdin.take());
        let pump2 = evloop::spawn(async move {
            let (Some(from), Some(to)) = (from, to.as_mut()) else {
                return Ok(0);
            };
            futures_lite::io::copy(from, to).await
        });

        let mut sorted = String::new();
        if let Some(mut out) = sort.stdout.take() {
            out.read_to_string(&mut sorted).await?;
        }
        pump1.await??;
        pump2.await??;
        print!("{sorted}");
        let (a, b, c) = (printf.wait().await?, tr.wait().await?, sort.wait().await?);
        println!(
            "exit statuses: printf {}, tr {}, sort {}",
            a.code().unwrap_or(-1),
            b.code().unwrap_or(-1),
            c.code().unwrap_or(-1)
        );

        // The same without the loop in the middle: echo's stdout becomes wc's stdin.
        let mut echo = Command::new("echo")
            .arg("one\ntwo\nthree")
            .stdout(Stdio::piped())
            .spawn()?;
        let pipe = echo.stdout.take().ok_or("no stdout")?;
        let wc = Command::new("wc")
            .arg("-l")
            .stdin(Stdio::try_from(pipe)?)
            .output()
            .await?;
        echo.wait().await?;
        println!(
            "through an fd handed over: {} lines",
            String::from_utf8_lossy(&wc.stdout).trim()
        );
        Ok::<(), Box<dyn Error>>(())
    })??;
    Ok(())
}
