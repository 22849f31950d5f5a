//! An echo server in asyncio's Protocol style: callbacks on the loop thread, no task per
//! connection.
//!
//! ```text
//! cargo run --release -p evloop --example echo_server_protocol -- [PORT]
//! ```
//! Listens on 127.0.0.1:PORT (default 0: any free port) and prints the address.

use std::io;

use evloop::protocol::{self, Protocol, Transport};

/// Writes back whatever it receives.
struct Echo {
    transport: Option<Transport>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }

    fn connection_lost(&mut self, _err: Option<io::Error>) {
        self.transport = None;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 0,
    };
    evloop::run(async move {
        let server =
            protocol::create_server(|| Echo { transport: None }, ("127.0.0.1", port)).await?;
        println!("echo (protocol) listening on {}", server.local_addr()?);
        server.serve_forever().await;
        io::Result::Ok(())
    })??;
    Ok(())
}
